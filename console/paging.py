"""A paged, filterable table with the panel's actions at the top, for every long list.

A panel builds one ``PagedTable``, hands it its action controls (placed above the
filter and the table, so staff never scroll past a 16,000-pixel table to act) and
gives it its rows, already formatted with ``console.fmt``::

    self.pager = PagedTable(
        ["Suche", "Patient", "Status", "seit"],
        actions=[self.search_select, self.cancel_button],
        page_size=25,
    )
    self.pager.set_rows(
        [[s.id, name, fmt.label(s.status, "SUCHSTATUS"), fmt.date_de(s.created)] for s in rows],
        keys=[s.id for s in rows],
    )
    self.pager.observe(lambda change: self._offer(change["new"]), names="visible_keys")

API (stable):

* ``PagedTable(headers, *, actions=(), page_size=25, filter_placeholder=..., css=...)``;
  it is an ``ipywidgets.VBox``: actions row, tool row (filter box, page size, ◀ page ▶),
  the table.
* ``set_rows(rows, keys=None)`` – the whole list (cells are escaped; ``keys`` one per row,
  default the row's position). Keeps the filter and the page if it still exists.
* ``visible_keys`` (trait, list) – the keys of the rows on the current page after the
  filter, in order; observe it to offer exactly those rows in a selection widget.
* ``matching_keys`` – every key that passes the filter (all pages).
* ``page`` (trait, 0-based), ``page_size`` (trait), ``page_count``, ``next_page()``,
  ``previous_page()``, ``filter.value`` (the filter text: every word must occur in some
  cell, case-insensitive).
* ``show(key)`` – turn to the page holding the row of ``key`` (the filter is cleared when
  it hides that row); False when the list has no such row. ``select(dropdown, key)`` –
  the same, then select ``key`` in the panel's selection ``dropdown`` (nothing selected
  when the list has no such row): for "open this record" jumps from other pages.
* CSS classes for tests: ``psymatch-pager`` (the whole), ``psymatch-pager-filter``,
  ``psymatch-pager-info`` ("Seite 1 von 3 · 57 Einträge"), ``psymatch-pager-next``,
  ``psymatch-pager-prev``.
"""

from __future__ import annotations

import ipywidgets as widgets
import traitlets

from .common import table
from .fmt import number_de

PAGE_SIZES = (10, 25, 50, 100)


def _matches(cells: list, words: list[str]) -> bool:
    text = " ".join("" if c is None else str(c) for c in cells).casefold()
    return all(word in text for word in words)


class PagedTable(widgets.VBox):
    """Actions at the top, a filter box and page buttons, and one page of the table."""

    page = traitlets.Int(0)
    page_size = traitlets.Int(25)
    visible_keys = traitlets.List()

    def __init__(
        self,
        headers: list[str],
        *,
        actions=(),
        page_size: int = 25,
        filter_placeholder: str = "Filtern (Name, ID, Status …)",
        css: str = "psymatch-table",
        **kwargs,
    ):
        self.headers = list(headers)
        self.css = css
        self._rows: list[list] = []
        self._keys: list = []
        self._matching: list[int] = []
        self.filter = widgets.Text(
            placeholder=filter_placeholder,
            description="Filter",
            layout=widgets.Layout(width="320px"),
        )
        self.filter.add_class("psymatch-pager-filter")
        sizes = sorted({*PAGE_SIZES, page_size})
        self.size_select = widgets.Dropdown(
            description="pro Seite",
            options=[(str(n), n) for n in sizes],
            value=page_size,
            layout=widgets.Layout(width="160px"),
        )
        self.prev_button = widgets.Button(
            description="Zurück", icon="chevron-left", layout=widgets.Layout(width="auto")
        )
        self.prev_button.add_class("psymatch-pager-prev")
        self.next_button = widgets.Button(
            description="Weiter", icon="chevron-right", layout=widgets.Layout(width="auto")
        )
        self.next_button.add_class("psymatch-pager-next")
        self.info = widgets.HTML()
        self.info.add_class("psymatch-pager-info")
        self.output = widgets.HTML()
        self.actions = widgets.HBox(list(actions), layout=widgets.Layout(flex_flow="row wrap"))

        self.prev_button.on_click(lambda _: self.previous_page())
        self.next_button.on_click(lambda _: self.next_page())
        self.filter.observe(lambda _: self._refilter(), names="value")
        traitlets.link((self.size_select, "value"), (self, "page_size"))
        self.observe(lambda _: self._render(), names=["page"])
        self.observe(lambda _: self._resize(), names=["page_size"])
        tools = widgets.HBox(
            [self.filter, self.size_select, self.prev_button, self.info, self.next_button],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        children = ([self.actions] if actions else []) + [tools, self.output]
        super().__init__(children, **kwargs)
        self.page_size = page_size
        self.add_class("psymatch-pager")
        self._render()

    # -- data ---------------------------------------------------------------------------------

    def set_rows(self, rows: list[list], keys: list | None = None) -> None:
        """Replace the list; the filter stays, the page too while it exists."""
        if keys is not None and len(keys) != len(rows):
            raise ValueError(f"{len(keys)} keys for {len(rows)} rows")
        self._rows = [list(r) for r in rows]
        self._keys = list(keys) if keys is not None else list(range(len(rows)))
        self._refilter(keep_page=True)

    @property
    def matching_keys(self) -> list:
        return [self._keys[i] for i in self._matching]

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self._matching) // self.page_size))

    # -- navigation ---------------------------------------------------------------------------

    def next_page(self) -> None:
        if self.page + 1 < self.page_count:
            self.page += 1

    def previous_page(self) -> None:
        if self.page > 0:
            self.page -= 1

    def show(self, key) -> bool:
        """Turn to the page holding the row of ``key``; the filter is cleared when it hides
        that row. False (nothing changed) when the list has no such row."""
        if key not in self._keys:
            return False
        keys = self.matching_keys
        if key not in keys:
            self.filter.value = ""  # refilters: every row matches
            keys = self.matching_keys
        page = keys.index(key) // self.page_size
        if page != self.page:
            self.page = page  # renders through the observer, and so offers the page
        return True

    def select(self, dropdown: widgets.Dropdown, key) -> bool:
        """``show(key)``, then select it in ``dropdown``, which the panel fills with the
        rows of the page shown (``visible_keys``). When the list has no such row nothing
        is selected. True if ``key`` is selected now."""
        shown = self.show(key) and key in [value for _, value in dropdown.options]
        dropdown.value = key if shown else None
        return shown

    def _refilter(self, keep_page: bool = False) -> None:
        words = self.filter.value.casefold().split()
        if words:
            self._matching = [i for i, row in enumerate(self._rows) if _matches(row, words)]
        else:  # no filter: no need to join 20,000 rows' cells into text
            self._matching = list(range(len(self._rows)))
        page = min(self.page, self.page_count - 1) if keep_page else 0
        if page != self.page:
            self.page = page  # renders through the observer
        else:
            self._render()

    def _resize(self) -> None:
        if self.page != 0:
            self.page = 0
        else:
            self._render()

    def _render(self) -> None:
        start = self.page * self.page_size
        shown = self._matching[start : start + self.page_size]
        self.output.value = table(self.headers, [self._rows[i] for i in shown], css=self.css)
        total = len(self._matching)
        of_all = "" if total == len(self._rows) else f" (von {number_de(len(self._rows))})"
        self.info.value = (
            f"Seite {self.page + 1} von {self.page_count} · "
            f"{number_de(total)} {'Eintrag' if total == 1 else 'Einträge'}{of_all}"
        )
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page + 1 >= self.page_count
        self.visible_keys = [self._keys[i] for i in shown]
