"""Object storage for environments' data stores: local folder or S3 (MinIO)."""
