// A small candlestick chart in inline SVG: price candles on top, volume bars below, a price
// scale on the right, times along the bottom and a dashed line at the last price.

import { fmtPrice, h } from "./lib.js";

const INTERVAL_MS = { "1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000 };

export function intervalMs(interval) {
  return INTERVAL_MS[interval];
}

/** Fold a trade into candles (oldest first), as the server would bucket it. */
export function foldTrade(candles, trade, interval) {
  const step = INTERVAL_MS[interval];
  const t = Date.parse(trade.created_at);
  const start = Math.floor(t / step) * step;
  const last = candles[candles.length - 1];
  const lastStart = last ? Date.parse(last.start) : -Infinity;
  if (last && lastStart === start) {
    last.high = Math.max(last.high, trade.price);
    last.low = Math.min(last.low, trade.price);
    last.close = trade.price;
    last.volume += trade.size;
  } else if (start > lastStart) {
    candles.push({
      start: new Date(start).toISOString(),
      open: trade.price,
      high: trade.price,
      low: trade.price,
      close: trade.price,
      volume: trade.size,
    });
  }
}

function niceStep(range, target) {
  const raw = range / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = [1, 2, 2.5, 5, 10].find((m) => m * power >= raw) || 10;
  return unit * power;
}

function label(iso, interval) {
  return interval === "1d" ? iso.slice(5, 10) : iso.slice(11, 16);
}

/**
 * Draw ``candles`` into ``host`` (its width decides the drawing's).
 * @param {{tick: number, interval: string, floor: number, cap: number}} o
 */
export function drawChart(host, candles, o) {
  const width = Math.max(220, Math.floor(host.clientWidth || 600));
  const height = Math.max(180, Math.floor(host.clientHeight || 260));
  const axis = 58; // the price scale on the right
  const bottom = 18; // time labels
  const plotW = width - axis;
  const volH = Math.round((height - bottom) * 0.2);
  const priceH = height - bottom - volH - 6;
  const svg = h("svg:svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: "chart-svg",
    role: "img",
    "aria-label": "price chart",
  });
  if (!candles.length) {
    svg.append(
      h("svg:text", { x: plotW / 2, y: height / 2, class: "chart-empty", "text-anchor": "middle" },
        "No trades in this window yet"),
    );
    host.replaceChildren(svg);
    return;
  }
  const slot = Math.min(14, Math.max(3, plotW / Math.max(candles.length, 24)));
  const shown = candles.slice(-Math.floor((plotW - 8) / slot));
  let lo = Math.min(...shown.map((c) => c.low));
  let hi = Math.max(...shown.map((c) => c.high));
  const pad = Math.max((hi - lo) * 0.08, o.tick * 2);
  lo = Math.max(o.floor, lo - pad);
  hi = Math.min(o.cap, hi + pad);
  if (hi <= lo) hi = lo + o.tick;
  const y = (p) => 4 + ((hi - p) / (hi - lo)) * (priceH - 8);
  const maxVol = Math.max(...shown.map((c) => c.volume), 1);
  const volTop = priceH + 6;

  // Grid lines and the price scale.
  const step = niceStep(hi - lo, 5);
  for (let p = Math.ceil(lo / step) * step; p <= hi + 1e-12; p += step) {
    const yy = y(p);
    svg.append(
      h("svg:line", { x1: 0, x2: plotW, y1: yy, y2: yy, class: "grid-line" }),
      h("svg:text", { x: plotW + 6, y: yy + 4, class: "axis" }, fmtPrice(p, o.tick)),
    );
  }
  svg.append(h("svg:line", { x1: 0, x2: plotW, y1: volTop, y2: volTop, class: "grid-line" }));

  const x0 = plotW - 8 - shown.length * slot; // a little air before the price scale
  const body = Math.max(1, slot * 0.7);
  shown.forEach((c, i) => {
    const cx = x0 + i * slot + slot / 2;
    const up = c.close >= c.open;
    const cls = up ? "up" : "down";
    const top = y(Math.max(c.open, c.close));
    const bodyH = Math.max(1, Math.abs(y(c.open) - y(c.close)));
    const p = (value) => fmtPrice(value, o.tick);
    const title = `${c.start.replace("T", " ").slice(0, 16)}  O ${p(c.open)} H ${p(c.high)} L ${p(c.low)} C ${p(c.close)}  V ${c.volume}`;
    const vh = Math.max(1, (c.volume / maxVol) * (volH - 2));
    svg.append(
      h("svg:g", { class: `candle ${cls}` },
        h("svg:title", {}, title),
        h("svg:line", { x1: cx, x2: cx, y1: y(c.high), y2: y(c.low), class: "wick" }),
        h("svg:rect", { x: cx - body / 2, y: top, width: body, height: bodyH, class: "body" }),
        h("svg:rect", { x: cx - body / 2, y: volTop + volH - vh, width: body, height: vh, class: "vol" }),
      ),
    );
  });

  // Time labels, spaced at least 70 px apart.
  const every = Math.max(1, Math.ceil(70 / slot));
  for (let i = shown.length - 1; i >= 0; i -= every) {
    const cx = x0 + i * slot + slot / 2;
    if (cx < 20) break;
    svg.append(
      h("svg:text", { x: cx, y: height - 4, class: "axis", "text-anchor": "middle" },
        label(shown[i].start, o.interval)),
    );
  }

  const last = shown[shown.length - 1].close;
  const ly = y(last);
  svg.append(
    h("svg:line", { x1: 0, x2: plotW, y1: ly, y2: ly, class: "last-line" }),
    h("svg:rect", { x: plotW + 1, y: ly - 8, width: axis - 2, height: 16, class: "last-tag" }),
    h("svg:text", { x: plotW + 6, y: ly + 4, class: "last-text" }, fmtPrice(last, o.tick)),
  );
  host.replaceChildren(svg);
}
