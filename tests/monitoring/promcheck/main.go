// promcheck: the checks of tests/monitoring that need Prometheus's and Grafana's own code.
//
//	promcheck selectors < expressions.json
//	    Reads a JSON array of PromQL expressions. Writes a JSON array with, per expression, its
//	    parse error or every series selector in it: the metric name when it is a plain name, else
//	    the matchers on __name__ (e.g. {__name__=~"metrics_.+_Value"}). Parsed by Prometheus's
//	    own parser (promql/parser), the one that evaluates rules, so nothing is guessed by regex.
//
//	promcheck dashboard FILE...
//	    Decodes each file with the Grafana Foundation SDK's strict decoder (unknown fields, wrong
//	    types and missing required fields are errors; panel options and Prometheus queries are
//	    decoded by their own plugin's schema) and runs the SDK's Validate. Writes a JSON object
//	    {file: [error, ...]} and exits 1 when any file has an error.
//
// Built by tools/build_prometheus.sh from this module, next to promtool and prometheus.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type matcher struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type selector struct {
	// Name is set when the selector names one metric (foo{...} or {__name__="foo"}).
	Name string `json:"name,omitempty"`
	// NameMatchers holds the other matchers on __name__ (=~, !~, !=) when Name is empty.
	NameMatchers []matcher `json:"name_matchers,omitempty"`
	Text         string    `json:"text"`
}

type parsed struct {
	Error     string     `json:"error,omitempty"`
	Selectors []selector `json:"selectors"`
}

func selectorsOf(expr string) parsed {
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return parsed{Error: err.Error(), Selectors: []selector{}}
	}
	out := parsed{Selectors: []selector{}}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		sel := selector{Name: vs.Name, Text: vs.String()}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName {
				continue
			}
			if m.Type == labels.MatchEqual {
				sel.Name = m.Value
			} else {
				sel.NameMatchers = append(sel.NameMatchers, matcher{Type: m.Type.String(), Value: m.Value})
			}
		}
		if sel.Name != "" {
			sel.NameMatchers = nil
		}
		out.Selectors = append(out.Selectors, sel)
		return nil
	})
	return out
}

func runSelectors(in io.Reader, out io.Writer) error {
	var exprs []string
	if err := json.NewDecoder(in).Decode(&exprs); err != nil {
		return fmt.Errorf("stdin is not a JSON array of strings: %w", err)
	}
	result := make([]parsed, 0, len(exprs))
	for _, e := range exprs {
		result = append(result, selectorsOf(e))
	}
	return json.NewEncoder(out).Encode(result)
}

// flatten turns the SDK's nested BuildErrors into one line per problem, each with its JSON path.
func flatten(err error) []string {
	var build cog.BuildErrors
	if errors.As(err, &build) {
		lines := make([]string, 0, len(build))
		for _, e := range build {
			lines = append(lines, e.Error())
		}
		return lines
	}
	return []string{err.Error()}
}

func runDashboards(files []string, out io.Writer) (bool, error) {
	plugins.RegisterDefaultPlugins()
	problems := map[string][]string{}
	ok := true
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return false, err
		}
		problems[file] = []string{}
		var board dashboard.Dashboard
		if err := board.UnmarshalJSONStrict(raw); err != nil {
			problems[file] = append(problems[file], flatten(err)...)
		} else if err := board.Validate(); err != nil {
			problems[file] = append(problems[file], flatten(err)...)
		}
		if len(problems[file]) > 0 {
			ok = false
		}
	}
	return ok, json.NewEncoder(out).Encode(problems)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: promcheck selectors < expressions.json | promcheck dashboard FILE...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "selectors":
		if err := runSelectors(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "promcheck selectors:", err)
			os.Exit(2)
		}
	case "dashboard":
		ok, err := runDashboards(os.Args[2:], os.Stdout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "promcheck dashboard:", err)
			os.Exit(2)
		}
		if !ok {
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "promcheck: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
