package actorbench

import (
	"encoding/json"
	"io"
	"runtime"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

// jsonRows writes the rows as one JSON document, each with its ratio
// (absent without a baseline).
func jsonRows(w io.Writer, who string, rows []benchkit.Row) error {
	type row struct {
		benchkit.Row
		Ratio *float64 `json:"ratio,omitempty"`
	}
	doc := struct {
		Runtime    string `json:"runtime"`
		Go         string `json:"go"`
		GOMAXPROCS int    `json:"gomaxprocs"`
		Ratio      string `json:"ratio"`
		Rows       []row  `json:"rows"`
	}{who, runtime.Version(), runtime.GOMAXPROCS(0), who + " ÷ baseline", []row{}}
	for _, r := range rows {
		x := row{Row: r}
		if r.Baseline != 0 {
			ratio := r.Ratio()
			x.Ratio = &ratio
		}
		doc.Rows = append(doc.Rows, x)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
