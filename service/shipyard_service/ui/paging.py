"""Page number and page size of a listing, read from the URL, and the links' numbers."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..domain.comparison import DEFAULT_PAGE_SIZE, PAGE_SIZES
from ..errors import BadRequest

# The deepest page asked for: its offset, (page - 1) * per_page, must fit the stores'
# 64-bit integers (past them SQLite's driver raised OverflowError, PostgreSQL "bigint out of
# range": a 500), and no listing holds a billion pages.
MAX_PAGE = 1_000_000_000


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int
    total: int = 0

    @classmethod
    def from_args(cls, args, default_size: int = DEFAULT_PAGE_SIZE) -> Paging:
        try:
            page = int(args.get("page") or 1)
            per_page = int(args.get("per_page") or default_size)
        except ValueError as exc:
            raise BadRequest("'page' and 'per_page' must be whole numbers",
                             {"field": "page"}) from exc
        if not 1 <= page <= MAX_PAGE or per_page not in PAGE_SIZES:
            raise BadRequest(f"'page' is from 1 to {MAX_PAGE:,} and 'per_page' is one of "
                             f"{list(PAGE_SIZES)}", {"field": "page"})
        return cls(page, per_page)

    def with_total(self, total: int) -> Paging:
        return replace(self, total=total)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        """1-based position of the page's first item (0 when empty)."""
        return min(self.total, (self.page - 1) * self.per_page + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)
