"""HTTP layer: one blueprint module per resource. Handlers translate HTTP <-> domain."""
