package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
)

// svgPalette colours the series (one per transport, in registry order).
var svgPalette = []string{
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
	"#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
	"#843c39", "#7b4173", "#3182bd", "#e6550d",
}

// series is one transport's points on a chart.
type series struct {
	name   string
	colour string
	dashed bool // not a cross-process transport (in-process or reference)
	pts    [][2]float64
}

// renderSVG draws two log-log charts side by side: 1:1 throughput
// (messages/s) by message size, and ping-pong p50 round trip by message size. The file
// is self-contained (no scripts, fonts or links).
func renderSVG(doc *Document) []byte {
	const W, H = 1290, 520
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	title := fmt.Sprintf("shmbench %s/%s, %d CPUs, %s", doc.Host.OS, doc.Host.Arch, len(doc.Host.CPUs), doc.Host.CPUModel)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", W/2, html.EscapeString(title))

	// Colours go to the transports drawn, in registry order, so that up
	// to len(svgPalette) series never share one.
	colours := map[string]string{}
	for _, name := range transportNames() {
		for _, r := range doc.Results {
			if r.Transport == name && r.Status == StatusOK && (r.Pattern == PatThroughput || r.Pattern == PatPingPong) {
				colours[name] = svgPalette[len(colours)%len(svgPalette)]
				break
			}
		}
	}
	collect := func(p Pattern, val func(Record) float64) []series {
		var out []series
		for _, name := range transportNames() {
			s := series{name: name, colour: colours[name]}
			for _, r := range doc.Results {
				if r.Transport == name && r.Pattern == p && r.Status == StatusOK && val(r) > 0 {
					s.pts = append(s.pts, [2]float64{float64(r.Size), val(r)})
					s.dashed = r.Kind == KindInProcess || r.Kind == KindReference
				}
			}
			if len(s.pts) > 0 {
				slices.SortFunc(s.pts, func(a, b [2]float64) int { return int(math.Copysign(1, a[0]-b[0])) })
				out = append(out, s)
			}
		}
		return out
	}
	// Messages/s rather than bytes/s: zero-copy rows move no payload, so
	// their bytes/s would be nominal.
	tput := collect(PatThroughput, func(r Record) float64 { return r.MsgsPerSec })
	lat := collect(PatPingPong, func(r Record) float64 { return float64(r.P50NS) })
	chart(&b, 85, 50, 460, 400, "Throughput, 1 producer -> 1 consumer (messages/s)", tput, func(v float64) string { return fmtRate(v) + "/s" })
	chart(&b, 640, 50, 460, 400, "Ping-pong round trip, p50", lat, func(v float64) string { return fmtNS(int64(v)) })

	// Legend, right of the charts, one entry per transport drawn.
	seen := map[string]bool{}
	y := 60
	for _, s := range append(tput, lat...) {
		if seen[s.name] {
			continue
		}
		seen[s.name] = true
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5,3"`
		}
		fmt.Fprintf(&b, `<line x1="1125" y1="%d" x2="1150" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", y, y, s.colour, dash)
		fmt.Fprintf(&b, `<text x="1155" y="%d" dominant-baseline="middle">%s</text>`+"\n", y, html.EscapeString(s.name))
		y += 18
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">message size (log). Dashed: in-process or reference. Medians of %d repetitions of %v.</text>`+"\n",
		W/2, H-12, doc.Config.Repetitions, durationString(doc.Config.DurationNS))
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func durationString(ns int64) string { return fmt.Sprint(timeDuration(ns)) }

// chart draws one log-log chart with its axes in the box (x, y, w, h).
func chart(b *bytes.Buffer, x, y, w, h int, title string, ss []series, yfmt func(float64) string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13" text-anchor="middle">%s</text>`+"\n", x+w/2, y-8, html.EscapeString(title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x, y, w, h)
	if len(ss) == 0 {
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" fill="#999">no data</text>`+"\n", x+w/2, y+h/2)
		return
	}
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.pts {
			xmin, xmax = math.Min(xmin, p[0]), math.Max(xmax, p[0])
			ymin, ymax = math.Min(ymin, p[1]), math.Max(ymax, p[1])
		}
	}
	// Whole decades (powers of 2 on x) around the data.
	lx0, lx1 := math.Floor(math.Log2(xmin)), math.Ceil(math.Log2(xmax))
	if lx1 == lx0 {
		lx0, lx1 = lx0-1, lx1+1
	}
	ly0, ly1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if ly1 == ly0 {
		ly1++
	}
	px := func(v float64) float64 { return float64(x) + (math.Log2(v)-lx0)/(lx1-lx0)*float64(w) }
	py := func(v float64) float64 { return float64(y+h) - (math.Log10(v)-ly0)/(ly1-ly0)*float64(h) }
	// Grid and tick labels.
	step := math.Max(1, math.Ceil((lx1-lx0)/8))
	for e := lx0; e <= lx1; e += step {
		X := px(math.Exp2(e))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", X, y, X, y+h)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", X, y+h+16, fmtSize(int(math.Exp2(e))))
	}
	for e := ly0; e <= ly1; e++ {
		Y := py(math.Pow(10, e))
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", x, Y, x+w, Y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", x-4, Y, html.EscapeString(yfmt(math.Pow(10, e))))
	}
	for _, s := range ss {
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5,3"`
		}
		if len(s.pts) > 1 {
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="`, s.colour, dash)
			for i, p := range s.pts {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(b, "%.1f,%.1f", px(p[0]), py(p[1]))
			}
			b.WriteString(`"/>` + "\n")
		}
		for _, p := range s.pts {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s: %s</title></circle>`+"\n",
				px(p[0]), py(p[1]), s.colour, html.EscapeString(s.name), fmtSize(int(p[0])), html.EscapeString(yfmt(p[1])))
		}
	}
}
