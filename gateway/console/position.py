"""Balances and the cash position for the console: the ledger's figures and domain/cash.py's projection
(the same as CashPositionQuery answers), summed by currency, and a 30-day chart drawn as SVG on the server
(no script, so the page's Content-Security-Policy stays strict; a table beside it says the same in words)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from domain.cash import Position
from domain.codes import Grant
from domain.money import Money
from gateway import cash
from gateway.console.labels import grouped
from gateway.directory import AccountGrant

DAYS = 30


@dataclass(frozen=True)
class AccountLine:
    account: str
    name: str
    currency: str
    booked: Money
    available: Money
    unsettled: Money


@dataclass(frozen=True)
class CurrencyPosition:
    currency: str
    booked: Money
    available: Money
    unsettled: Money
    days: tuple[tuple[dt.date, Money, Money], ...]   # date, projected closing balance, planned outflows
    chart: str                                        # SVG markup (escaped here: only numbers and dates)


def overview(conn, grants: dict[str, AccountGrant], today: dt.date) -> tuple[list[AccountLine], list[CurrencyPosition]]:
    """The accounts the operator may query, and their cash position by currency over the next 30 days."""
    chosen = [g for g in grants.values() if Grant.QUERY in g.grants]
    positions = [cash.position(conn, g.account, g.currency, today, DAYS, []) for g in chosen]
    lines = [AccountLine(g.account, g.name, g.currency, *(Money.from_minor(v, g.currency)
                                                          for v in (p.booked, p.available, p.unsettled)))
             for g, p in zip(chosen, positions)]
    by_currency: dict[str, list[Position]] = {}
    for p in positions:
        by_currency.setdefault(p.currency, []).append(p)
    return lines, [_sum(ccy, ps) for ccy, ps in sorted(by_currency.items())]


def _sum(currency: str, ps: list[Position]) -> CurrencyPosition:
    def money(v: int) -> Money:
        return Money.from_minor(v, currency)
    days = []
    for n in range(DAYS):
        date = ps[0].days[n].date
        days.append((date, sum(p.days[n].projected for p in ps), sum(p.days[n].outflows for p in ps)))
    return CurrencyPosition(currency, money(sum(p.booked for p in ps)), money(sum(p.available for p in ps)),
                            money(sum(p.unsettled for p in ps)),
                            tuple((d, money(proj), money(out)) for d, proj, out in days), chart(days, currency))


def chart(days: list[tuple[dt.date, int, int]], currency: str, width: int = 720, height: int = 260) -> str:
    """A line of the projected closing balance over bars of the planned outflows (same scale, minor units
    shown as major), with a label on each axis end and each point titled for screen readers."""
    left, right, top, bottom = 86, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [p for _, p, _ in days] + [o for _, _, o in days] + [0]
    low, high = min(values), max(values)
    if high == low:
        high = low + 1
    step = plot_w / max(1, len(days))

    def y(v: int) -> float:
        return top + plot_h - (v - low) / (high - low) * plot_h

    def major(v: int) -> str:
        return grouped(Money.from_minor(v, currency))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'class="chart" aria-labelledby="chart-{currency}-title chart-{currency}-desc">']
    parts.append(f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="#8a8f98" '
                 'stroke-width="1"/>')
    for v in (high, low):
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" fill="#444">'
                     f'{major(v)}</text>')
    for n, (date, _, out) in enumerate(days):
        if out:
            x = left + n * step + step * 0.2
            parts.append(f'<rect x="{x:.1f}" y="{y(out):.1f}" width="{step * 0.6:.1f}" '
                         f'height="{max(1.0, y(0) - y(out)):.1f}" fill="#d9822b"><title>{date.isoformat()} '
                         f'{major(out)}</title></rect>')
    points = " ".join(f"{left + n * step + step / 2:.1f},{y(p):.1f}" for n, (_, p, _) in enumerate(days))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#1f5fa8" stroke-width="2"/>')
    for n, (date, p, _) in enumerate(days):
        parts.append(f'<circle cx="{left + n * step + step / 2:.1f}" cy="{y(p):.1f}" r="2.5" fill="#1f5fa8">'
                     f'<title>{date.isoformat()} {major(p)}</title></circle>')
    for n, anchor in ((0, "start"), (len(days) // 2, "middle"), (len(days) - 1, "end")):
        parts.append(f'<text x="{left + n * step + step / 2:.1f}" y="{height - 8}" text-anchor="{anchor}" '
                     f'font-size="11" fill="#444">{days[n][0].isoformat()}</text>')
    parts.append("</svg>")
    return "".join(parts)
