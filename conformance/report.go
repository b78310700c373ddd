package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteList prints every test of tests: id, section, level and summary.
func WriteList(w io.Writer, tests []*Test) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSECTION\tLEVEL\tCHECKS")
	for _, t := range tests {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Section, t.Level, t.Summary)
	}
	return tw.Flush()
}

// WriteTable prints the results as a table, the failures with their
// messages, and the summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLEVEL\tRESULT\tCHECKS")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.ID, x.Level, strings.ToUpper(string(x.Status)), x.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Results {
		if x.Status == Pass {
			continue
		}
		fmt.Fprintf(w, "\n%s %s (%s %s): %s\n    spec: %q\n", strings.ToUpper(string(x.Status)), x.ID, x.Level, x.Section, x.Message, x.Cite)
	}
	fmt.Fprintln(w)
	_, err := fmt.Fprintln(w, r.SummaryLine())
	return err
}

// SummaryLine is one line with the counts.
func (r *Report) SummaryLine() string {
	s := r.Summary
	return fmt.Sprintf("%d tests: %d passed, %d failed (%d MUST, %d SHOULD), %d skipped, in %.1fs against %s (%s)",
		s.Total, s.Passed, s.Failed, s.FailedMUST, s.FailedSHOULD, s.Skipped, r.Duration.Seconds(), r.Domain, r.Server)
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the report in the JUnit XML format, one test suite per
// section of the specification.
func (r *Report) WriteJUnit(w io.Writer) error {
	var out junitSuites
	idx := map[string]int{}
	for _, x := range r.Results {
		i, ok := idx[x.Section]
		if !ok {
			i = len(out.Suites)
			idx[x.Section] = i
			out.Suites = append(out.Suites, junitSuite{Name: "xchat-conformance " + x.Section})
		}
		s := &out.Suites[i]
		c := junitCase{Name: x.ID + " [" + string(x.Level) + "] " + x.Summary, Classname: "section " + x.Section,
			Time: fmt.Sprintf("%.3f", x.Duration.Seconds())}
		s.Tests++
		switch x.Status {
		case Fail:
			s.Failures++
			c.Failure = &junitMessage{Message: x.Message, Body: "spec: " + x.Cite}
		case Skip:
			s.Skipped++
			c.Skipped = &junitMessage{Message: x.Message}
		}
		s.Cases = append(s.Cases, c)
	}
	for i := range out.Suites {
		var sec float64
		for _, c := range out.Suites[i].Cases {
			var f float64
			fmt.Sscanf(c.Time, "%g", &f)
			sec += f
		}
		out.Suites[i].Time = fmt.Sprintf("%.3f", sec)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
