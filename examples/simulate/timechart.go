package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/template"
)

// lineChart draws one line per series over time: Values[s][k] at time
// Times[k] seconds; y from 0 to YMax.
type lineChart struct {
	Title, YLabel string
	Series        []string
	Times         []float64
	Values        [][]float64
	YMax          float64
	// Marks are times to draw a vertical dashed line at, with a label.
	Marks []svgTick
	// Guides are values to draw a horizontal dashed line at, with a label.
	Guides []svgTick
}

var lineTemplate = template.Must(template.New("line").Parse(`<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{{.TitleX}}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{{.Title}}</text>
<text transform="translate(16,{{.MidY}}) rotate(-90)" text-anchor="middle">{{.YLabel}}</text>
{{range .Ticks}}<line x1="{{$.L}}" x2="{{$.R}}" y1="{{.Y}}" y2="{{.Y}}" stroke="#dddddd"/>
<text x="{{$.TickX}}" y="{{.Y}}" dy="4" text-anchor="end" fill="#555555">{{.Label}}</text>
{{end}}{{range .XTicks}}<text x="{{.X}}" y="{{$.XTickY}}" text-anchor="middle" fill="#555555">{{.Label}}</text>
{{end}}{{range .Marks}}<line x1="{{.X}}" x2="{{.X}}" y1="{{$.T}}" y2="{{$.B}}" stroke="#999999" stroke-dasharray="4 3"/>
<text x="{{.X}}" y="{{$.T}}" dx="4" dy="12" fill="#555555">{{.Label}}</text>
{{end}}{{range .Guides}}<line x1="{{$.L}}" x2="{{$.R}}" y1="{{.Y}}" y2="{{.Y}}" stroke="#999999" stroke-dasharray="4 3"/>
<text x="{{$.R}}" y="{{.Y}}" dy="-4" text-anchor="end" fill="#555555">{{.Label}}</text>
{{end}}{{range .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="1.5" points="{{.Label}}"/>
{{end}}<line x1="{{.L}}" x2="{{.R}}" y1="{{.B}}" y2="{{.B}}" stroke="#333333"/>
{{range .Legend}}<rect x="{{.X}}" y="{{.Y}}" width="12" height="12" fill="{{.Color}}"/><text x="{{.X}}" y="{{.Y}}" dx="16" dy="10">{{.Label}}</text>
{{end}}</svg>
`))

// write renders the chart as SVG.
func (c *lineChart) write(w io.Writer) error {
	t0, t1 := c.Times[0], c.Times[len(c.Times)-1]
	x := func(t float64) float64 { return round1(marginL + plotW*(t-t0)/(t1-t0)) }
	y := func(v float64) float64 { return round1(marginT + plotH - plotH*math.Min(v, c.YMax)/c.YMax) }
	var ticks []svgTick
	for i := 0; i <= 5; i++ {
		v := c.YMax * float64(i) / 5
		ticks = append(ticks, svgTick{Y: y(v), Label: fmt.Sprintf("%.0f%%", v*100)})
	}
	var xticks []svgText
	step := niceCeil((t1 - t0) / 8)
	for t := math.Ceil(t0/step) * step; t <= t1; t += step {
		xticks = append(xticks, svgText{X: x(t), Label: fmt.Sprintf("%g s", t)})
	}
	var lines, legend []svgText
	lx := marginL
	for si, s := range c.Series {
		var pts []string
		for k, t := range c.Times {
			if v := c.Values[si][k]; !math.IsNaN(v) {
				pts = append(pts, fmt.Sprintf("%g,%g", x(t), y(v)))
			}
		}
		color := palette[si%len(palette)]
		lines = append(lines, svgText{Label: strings.Join(pts, " "), Color: color})
		legend = append(legend, svgText{X: round1(lx), Y: legendY - 10, Label: s, Color: color})
		lx += 30 + 7*float64(len(s))
	}
	var marks []svgText
	for _, m := range c.Marks {
		marks = append(marks, svgText{X: x(m.Y), Label: m.Label})
	}
	var guides []svgTick
	for _, g := range c.Guides {
		guides = append(guides, svgTick{Y: y(g.Y), Label: g.Label})
	}
	return lineTemplate.Execute(w, map[string]any{
		"W": chartW, "H": chartH, "Title": c.Title, "YLabel": c.YLabel,
		"TitleX": chartW / 2, "MidY": marginT + plotH/2,
		"L": marginL, "R": marginL + plotW, "T": marginT, "B": marginT + plotH, "TickX": marginL - 6,
		"XTickY": marginT + plotH + 16,
		"Ticks":  ticks, "XTicks": xticks, "Marks": marks, "Guides": guides, "Lines": lines, "Legend": legend,
	})
}

// shiftChart plots, for a shift scenario's results at one load, the slowed
// server's share of picks per bin from 5 s before the shift to 20 s after
// the recovery, for the oracle and the load-aware balancers.
func shiftChart(sc scenario, rows []*result, duration float64) *lineChart {
	sh := sc.shift
	start, end := sh.start*duration, sh.end*duration
	from, to := math.Max(0, start-5), math.Min(duration, end+20)
	fair := 1 / float64(len(sc.servers))
	c := &lineChart{
		Title:  fmt.Sprintf("%s: share of the slowed server at %.0f%% load", sc.name, rows[0].load*100),
		YLabel: "share of picks (half-second bins)",
		YMax:   0.4,
		Marks:  []svgTick{{Y: start, Label: fmt.Sprintf("%g× slower", sh.factor)}, {Y: end, Label: "back"}},
		Guides: []svgTick{{Y: fair, Label: "fair share"}, {Y: fair / 4, Label: "¼ of it"}},
	}
	for b := range rows[0].bins {
		if t := float64(b) * binWidth; t >= from && t < to {
			c.Times = append(c.Times, t+binWidth/2)
		}
	}
	for _, r := range rows {
		switch r.algorithm {
		case "oracle", "least-conn", "p2c", "peak-ewma", "adaptive":
		default:
			continue
		}
		c.Series = append(c.Series, r.algorithm)
		var vals []float64
		for b, bin := range r.bins {
			if t := float64(b) * binWidth; t < from || t >= to {
				continue
			}
			total := 0
			for _, p := range bin {
				total += p
			}
			v := math.NaN()
			if total > 0 {
				v = float64(bin[sh.server]) / float64(total)
			}
			vals = append(vals, v)
		}
		c.Values = append(c.Values, vals)
	}
	return c
}
