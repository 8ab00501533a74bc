package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/template"
)

// barChart is a grouped bar chart: one group per category, one bar per
// series in each group.
type barChart struct {
	Title    string
	YLabel   string
	Log      bool // logarithmic y axis
	Percent  bool // values are fractions, shown as percentages
	Groups   []string
	Series   []string
	Values   [][]float64 // [group][series]
	unitFunc func(float64) string
}

// palette is colour-blind safe (Okabe and Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

type svgBar struct {
	X, Y, W, H float64
	Color      string
	Label      string
}

type svgTick struct {
	Y     float64
	Label string
}

type svgText struct {
	X, Y  float64
	Label string
	Color string
}

const (
	chartW, chartH           = 760.0, 360.0
	marginL, marginR         = 70.0, 20.0
	marginT, marginB         = 40.0, 70.0
	plotW                    = chartW - marginL - marginR
	plotH                    = chartH - marginT - marginB
	legendY                  = chartH - 18.0
	groupPad         float64 = 0.2
)

var svgTemplate = template.Must(template.New("svg").Parse(`<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{{.TitleX}}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{{.Title}}</text>
<text transform="translate(16,{{.MidY}}) rotate(-90)" text-anchor="middle">{{.YLabel}}</text>
{{range .Ticks}}<line x1="{{$.L}}" x2="{{$.R}}" y1="{{.Y}}" y2="{{.Y}}" stroke="#dddddd"/>
<text x="{{$.TickX}}" y="{{.Y}}" dy="4" text-anchor="end" fill="#555555">{{.Label}}</text>
{{end}}{{range .Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Color}}"><title>{{.Label}}</title></rect>
{{end}}<line x1="{{.L}}" x2="{{.R}}" y1="{{.B}}" y2="{{.B}}" stroke="#333333"/>
{{range .GroupLabels}}<text x="{{.X}}" y="{{.Y}}" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .Legend}}<rect x="{{.X}}" y="{{.Y}}" width="12" height="12" fill="{{.Color}}"/><text x="{{.X}}" y="{{.Y}}" dx="16" dy="10">{{.Label}}</text>
{{end}}</svg>
`))

// write renders the chart as SVG.
func (c *barChart) write(w io.Writer) error {
	lo, hi := math.Inf(1), 0.0
	for _, g := range c.Values {
		for _, v := range g {
			if v > 0 && !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		hi, lo = 1, 0.1
	}
	var scale func(float64) float64 // value to height in pixels
	var ticks []svgTick
	if c.Log {
		lo10 := math.Floor(math.Log10(lo))
		hi10 := math.Ceil(math.Log10(hi))
		if hi10 == lo10 {
			hi10++
		}
		scale = func(v float64) float64 {
			if v <= 0 {
				return 0
			}
			return plotH * (math.Log10(v) - lo10) / (hi10 - lo10)
		}
		for e := lo10; e <= hi10; e++ {
			v := math.Pow(10, e)
			ticks = append(ticks, svgTick{Y: marginT + plotH - scale(v), Label: c.unit(v)})
		}
	} else {
		top := niceCeil(hi)
		scale = func(v float64) float64 { return plotH * v / top }
		for i := 0; i <= 5; i++ {
			v := top * float64(i) / 5
			ticks = append(ticks, svgTick{Y: marginT + plotH - scale(v), Label: c.unit(v)})
		}
	}
	groupW := plotW / float64(len(c.Groups))
	barW := groupW * (1 - groupPad) / float64(len(c.Series))
	var bars []svgBar
	var labels []svgText
	for gi, g := range c.Groups {
		x0 := marginL + float64(gi)*groupW + groupW*groupPad/2
		for si, s := range c.Series {
			v := c.Values[gi][si]
			h := math.Max(0, scale(v))
			bars = append(bars, svgBar{
				X: round1(x0 + float64(si)*barW), Y: round1(marginT + plotH - h), W: round1(barW * 0.92), H: round1(h),
				Color: palette[si%len(palette)], Label: fmt.Sprintf("%s, %s: %s", g, s, c.unit(v)),
			})
		}
		labels = append(labels, svgText{X: round1(marginL + (float64(gi)+0.5)*groupW), Y: marginT + plotH + 18, Label: g})
	}
	var legend []svgText
	x := marginL
	for si, s := range c.Series {
		legend = append(legend, svgText{X: round1(x), Y: legendY - 10, Label: s, Color: palette[si%len(palette)]})
		x += 30 + 7*float64(len(s))
	}
	return svgTemplate.Execute(w, map[string]any{
		"W": chartW, "H": chartH, "Title": c.Title, "YLabel": c.YLabel,
		"TitleX": chartW / 2, "MidY": marginT + plotH/2,
		"L": marginL, "R": marginL + plotW, "B": marginT + plotH, "TickX": marginL - 6,
		"Ticks": ticks, "Bars": bars, "GroupLabels": labels, "Legend": legend,
	})
}

func (c *barChart) unit(v float64) string {
	if c.unitFunc != nil {
		return c.unitFunc(v)
	}
	if c.Percent {
		return fmt.Sprintf("%.0f%%", v*100)
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// ms formats seconds as milliseconds.
func ms(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0f s", v)
	case v >= 1:
		return fmt.Sprintf("%.1f s", v)
	case v >= 0.01:
		return fmt.Sprintf("%.0f ms", v*1000)
	default:
		return fmt.Sprintf("%.1f ms", v*1000)
	}
}
