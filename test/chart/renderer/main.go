// A stand-in for `helm template` / `helm lint`'s rendering, built from Debian's Go packages because no
// helm binary is reachable here. It does what Helm 3 does for everything the chart uses, and fails
// loudly (parse error, or an explicit error below) on any function or built-in object it does not
// implement, so the chart cannot come to depend on something rendered differently by real Helm.
//
//	renderer --chart DIR [-f values.yaml]... [--name N] [--namespace NS] [--upgrade]
//	         [--lookup state.yaml] [--notes] [--kube-version v1.30.0] [--chart-values FILE]
//
// --chart-values replaces the chart's values.yaml as the defaults, as `helm upgrade --reuse-values` does
// with the last release's coalesced values.
//
// Writes the manifests as `helm template` does ("---\n# Source: chart/templates/file\n" before each
// non-empty document) or, with --notes, the rendered NOTES.txt.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
	"github.com/xeipuuv/gojsonschema"
)

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "Error: "+format+"\n", args...)
	os.Exit(1)
}

func readYAML(file string) map[string]interface{} {
	data, err := os.ReadFile(file)
	if err != nil {
		fail("%v", err)
	}
	// Helm reads values and Chart.yaml with sigs.k8s.io/yaml (ghodss/yaml is its origin): YAML is
	// converted to JSON first, so every number becomes a float64, as it does in Helm.
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		fail("%s: %v", file, err)
	}
	return out
}

// mergeMaps is how Helm combines several -f files (pkg/cli/values): maps merge deeply, anything else
// (lists, scalars, null) from the later file replaces.
func mergeMaps(a, b map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]interface{}); ok {
			if bv, ok := out[k].(map[string]interface{}); ok {
				out[k] = mergeMaps(bv, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// coalesce is chartutil.CoalesceValues for a chart without subcharts: user values win, chart defaults
// fill what they leave out, maps merge deeply, and a user null deletes the key (default included).
func coalesce(user, defaults map[string]interface{}) map[string]interface{} {
	for k, dv := range defaults {
		uv, present := user[k]
		if !present {
			user[k] = dv
			continue
		}
		if uv == nil {
			delete(user, k)
			continue
		}
		um, uok := uv.(map[string]interface{})
		dm, dok := dv.(map[string]interface{})
		if uok && dok {
			coalesce(um, dm)
		} else if uok != dok && dv != nil {
			// Helm prints this warning and keeps the user's value.
			fmt.Fprintf(os.Stderr, "coalesce.go: warning: cannot overwrite table with non table for %s\n", k)
		}
	}
	// A null for a key that has no default stays, as in Helm (values.schema.json then sees the null).
	return user
}

// chartObject gives Chart.yaml's fields the capitalised names Helm's .Chart has.
func chartObject(meta map[string]interface{}) map[string]interface{} {
	names := map[string]string{"apiVersion": "APIVersion", "appVersion": "AppVersion", "kubeVersion": "KubeVersion"}
	out := map[string]interface{}{}
	for k, v := range meta {
		name, ok := names[k]
		if !ok {
			name = strings.ToUpper(k[:1]) + k[1:]
		}
		out[name] = v
	}
	return out
}

// Built-in objects Helm has and this renderer does not: using them is an error, not an empty value.
var unimplemented = map[string]bool{"Files": true, "Subcharts": true, "Capabilities": true}

// if, range and with: the pipeline and both branches.
func checkBranch(name string, b *parse.BranchNode) {
	checkNode(name, b.Pipe)
	checkNode(name, b.List)
	checkNode(name, b.ElseList)
}

func checkNode(name string, node parse.Node) {
	if node == nil {
		return
	}
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			checkNode(name, c)
		}
	case *parse.ActionNode:
		checkNode(name, n.Pipe)
	case *parse.IfNode:
		checkBranch(name, &n.BranchNode)
	case *parse.RangeNode:
		checkBranch(name, &n.BranchNode)
	case *parse.WithNode:
		checkBranch(name, &n.BranchNode)
	case *parse.TemplateNode:
		checkNode(name, n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			checkNode(name, c)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			checkNode(name, a)
		}
	case *parse.ChainNode:
		checkNode(name, n.Node)
	case *parse.FieldNode:
		if len(n.Ident) > 0 && unimplemented[n.Ident[0]] {
			fail("%s: .%s is not implemented by this renderer", name, n.Ident[0])
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && unimplemented[n.Ident[1]] {
			fail("%s: $.%s is not implemented by this renderer", name, n.Ident[1])
		}
	}
}

func main() {
	var files fileList
	chartDir := flag.String("chart", "", "chart directory")
	flag.Var(&files, "f", "values file (repeatable, later wins)")
	name := flag.String("name", "lxcfs-webhook", "release name")
	namespace := flag.String("namespace", "lxcfs", "release namespace")
	upgrade := flag.Bool("upgrade", false, "render as helm upgrade (IsUpgrade, Revision 2)")
	lookupFile := flag.String("lookup", "", "YAML stream of objects that lookup finds in the 'cluster'")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt instead of the manifests")
	kubeVersion := flag.String("kube-version", "v1.30.0", "cluster version Chart.yaml's kubeVersion is checked against, as helm's --kube-version")
	chartValues := flag.String("chart-values", "", "defaults in place of the chart's values.yaml")
	flag.Parse()
	if *chartDir == "" {
		fail("--chart is required")
	}

	meta := readYAML(filepath.Join(*chartDir, "Chart.yaml"))
	chartName, _ := meta["name"].(string)
	// Helm refuses to render a chart whose kubeVersion constraint the cluster version does not meet.
	if constraint, ok := meta["kubeVersion"].(string); ok && constraint != "" {
		c, err := semver.NewConstraint(constraint)
		if err != nil {
			fail("Chart.yaml kubeVersion: %v", err)
		}
		v, err := semver.NewVersion(*kubeVersion)
		if err != nil {
			fail("--kube-version: %v", err)
		}
		if !c.Check(v) {
			fail("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", constraint, *kubeVersion)
		}
	}
	user := map[string]interface{}{}
	for _, f := range files {
		user = mergeMaps(user, readYAML(f))
	}
	defaultsFile := filepath.Join(*chartDir, "values.yaml")
	if *chartValues != "" {
		defaultsFile = *chartValues
	}
	values := coalesce(user, readYAML(defaultsFile))

	// Helm validates the final values against values.schema.json with gojsonschema, and refuses to render.
	if schema, err := os.ReadFile(filepath.Join(*chartDir, "values.schema.json")); err == nil {
		valuesJSON, _ := json.Marshal(values)
		result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(valuesJSON))
		if err != nil {
			fail("values.schema.json: %v", err)
		}
		if !result.Valid() {
			var b strings.Builder
			for _, e := range result.Errors() {
				fmt.Fprintf(&b, "- %s\n", e)
			}
			fail("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n%s", chartName, b.String())
		}
	}

	var cluster []map[string]interface{}
	if *lookupFile != "" {
		data, err := os.ReadFile(*lookupFile)
		if err != nil {
			fail("%v", err)
		}
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			obj := map[string]interface{}{}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				fail("%s: %v", *lookupFile, err)
			}
			if len(obj) > 0 {
				cluster = append(cluster, obj)
			}
		}
	}

	revision := 1
	if *upgrade {
		revision = 2
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chartObject(meta),
		"Release": map[string]interface{}{
			"Name": *name, "Namespace": *namespace, "IsInstall": !*upgrade, "IsUpgrade": *upgrade,
			"Revision": revision, "Service": "Helm",
		},
	}

	root := template.New("gotpl")
	funcs := sprig.TxtFuncMap()
	// Helm removes these two from sprig (they would read the renderer's environment).
	delete(funcs, "env")
	delete(funcs, "expandenv")
	// Helm replaces sprig's fromJson with its own (a map, errors under "Error"), which is not implemented
	// here: remove sprig's so a template using it fails instead of rendering differently. Helm's other
	// own functions not implemented here (toToml, fromToml, toYamlPretty, fromYamlArray, fromJsonArray)
	// are not in sprig, so they are parse errors already.
	delete(funcs, "fromJson")
	includeDepth := 0
	funcs["include"] = func(tname string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", tname)
		}
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, tname, data)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Option("missingkey=zero").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	funcs["toYaml"] = func(v interface{}) string {
		data, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(data), "\n")
	}
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["toJson"] = func(v interface{}) string {
		data, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(data)
	}
	funcs["lookup"] = func(apiVersion, kind, ns, oname string) (map[string]interface{}, error) {
		var items []interface{}
		for _, o := range cluster {
			md, _ := o["metadata"].(map[string]interface{})
			if o["apiVersion"] != apiVersion || o["kind"] != kind || (ns != "" && md["namespace"] != ns) {
				continue
			}
			if oname == "" {
				items = append(items, o)
			} else if md["name"] == oname {
				return o, nil
			}
		}
		if oname == "" {
			return map[string]interface{}{"apiVersion": apiVersion, "kind": kind + "List", "items": items}, nil
		}
		// Helm's lookup returns an empty map for an object that does not exist.
		return map[string]interface{}{}, nil
	}
	root.Funcs(funcs).Option("missingkey=zero")

	var names []string
	err := filepath.Walk(filepath.Join(*chartDir, "templates"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(*chartDir, p)
		names = append(names, path.Join(chartName, filepath.ToSlash(rel)))
		return nil
	})
	if err != nil {
		fail("%v", err)
	}
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(*chartDir, strings.TrimPrefix(n, chartName+"/")))
		if err != nil {
			fail("%v", err)
		}
		t, err := root.New(n).Parse(string(data))
		if err != nil {
			fail("parse error in %v", err)
		}
		checkNode(n, t.Tree.Root)
	}

	var out strings.Builder
	for _, n := range names {
		base := path.Base(n)
		isNotes := base == "NOTES.txt"
		// Partials (_*.tpl and the like) are parsed but never rendered on their own.
		if strings.HasPrefix(base, "_") || isNotes != *notes {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": n, "BasePath": path.Join(chartName, "templates")}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, n, data); err != nil {
			fail("%v", err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			out.WriteString(text)
			continue
		}
		// Helm splits a rendered file into documents and drops those with nothing but whitespace.
		for _, doc := range regexp.MustCompile(`(?m)^---.*$`).Split(text, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", n, strings.Trim(doc, "\n"))
		}
	}
	os.Stdout.WriteString(out.String())
}
