// The admission harness: the API server's own admission chain, built from Debian's packaged
// k8s.io/apiserver, run on the objects of one scenario. It stands in for kube-apiserver's admission
// step (there is no kube-apiserver binary to run here) with the real plugins, wired the way the API
// server wires them:
//
//   - MutatingAdmissionPolicy then MutatingAdmissionWebhook, in the API server's recommended order,
//     made by admission.Plugins.NewFromPlugins, which also adds the reinvocation round;
//   - the configurations, policies, bindings and Namespaces are served to the plugins by informers over
//     a client set holding the scenario's objects, as the API server's informers serve etcd's;
//   - webhooks are called over real HTTPS by the plugin's own client: the Service in clientConfig is
//     dialled at the address the scenario maps it to (the API server's endpoint resolver), and the
//     server's certificate is verified against the configuration's caBundle for the Service's DNS
//     name, <service>.<namespace>.svc;
//   - each case is an admission.Attributes record of a typed corev1.Pod (CREATE pods, or UPDATE
//     pods/ephemeralcontainers), and the mutated object the chain returns is a typed corev1.Pod.
//
// It reads the scenario as JSON on stdin and writes the results as JSON on stdout:
//
//	{"objects": [Namespace, MutatingWebhookConfiguration, MutatingAdmissionPolicy(Binding)...],
//	 "services": {"lxcfs/lxcfs-webhook:443": "127.0.0.1:8443", "lxcfs/down:443": ""},
//	 "cases": [{"name", "namespace", "operation": "CREATE" (default) or "UPDATE", "subresource", "object", "oldObject", "dryRun"}],
//	 "decode": [pod, ...]}
//	→ {"results": [{"name", "allowed", "error", "code", "object", "warnings", "annotations"}], "decoded": [pod, ...]}
//
// "decode" round-trips pods through corev1.Pod, so a caller can compare what another tool made with
// what the chain returns on equal terms. A service mapped to "" has no endpoints.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/initializer"
	mutatingpolicy "k8s.io/apiserver/pkg/admission/plugin/policy/mutating"
	webhookinit "k8s.io/apiserver/pkg/admission/plugin/webhook/initializer"
	mutatingwebhook "k8s.io/apiserver/pkg/admission/plugin/webhook/mutating"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/client-go/discovery"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/openapi/openapitest"
	"k8s.io/component-base/compatibility"
)

type admissionCase struct {
	Name        string          `json:"name"`
	Namespace   string          `json:"namespace"`
	Operation   string          `json:"operation"`
	Subresource string          `json:"subresource"`
	Object      json.RawMessage `json:"object"`
	OldObject   json.RawMessage `json:"oldObject"`
	DryRun      bool            `json:"dryRun"`
}

type scenario struct {
	Objects  []json.RawMessage `json:"objects"`
	Services map[string]string `json:"services"`
	Cases    []admissionCase   `json:"cases"`
	Decode   []json.RawMessage `json:"decode"`
}

type result struct {
	Name    string `json:"name"`
	Allowed bool   `json:"allowed"`
	// The error the API server would answer the client with, and its HTTP status code.
	Error string      `json:"error,omitempty"`
	Code  int32       `json:"code,omitempty"`
	Object *corev1.Pod `json:"object,omitempty"`
	Warnings []string `json:"warnings"`
	// Audit annotations the plugins wrote: which webhook was called in which round, and whether it mutated.
	Annotations map[string]string `json:"annotations"`
}

type output struct {
	Results []result      `json:"results"`
	Decoded []*corev1.Pod `json:"decoded"`
}

// The API server's whole admission step for one request may take this long (its default request timeout).
const requestTimeout = 60 * time.Second

var codecs = serializer.NewCodecFactory(clientgoscheme.Scheme)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "admission-harness: "+format+"\n", args...)
	os.Exit(2)
}

func decodeObject(raw json.RawMessage) runtime.Object {
	obj, _, err := codecs.UniversalDeserializer().Decode(raw, nil, nil)
	if err != nil {
		fail("decoding %.200s: %v", string(raw), err)
	}
	return obj
}

func decodePod(raw json.RawMessage) *corev1.Pod {
	pod := &corev1.Pod{}
	if err := json.Unmarshal(raw, pod); err != nil {
		fail("decoding a Pod: %v", err)
	}
	return pod
}

// withTypeMeta sets apiVersion and kind, which a typed object inside the API server does not carry, so
// that results and decoded pods compare equal field by field.
func withTypeMeta(pod *corev1.Pod) *corev1.Pod {
	pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	return pod
}

// serviceResolver is the API server's endpoint resolver for the scenario: each Service is dialled at the
// address the scenario gives it; one mapped to "" has no ready endpoint, as when no replica answers.
type serviceResolver map[string]string

func (s serviceResolver) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	address, ok := s[fmt.Sprintf("%s/%s:%d", namespace, name, port)]
	if !ok || address == "" {
		return nil, fmt.Errorf("no endpoints available for service %q", namespace+"/"+name)
	}
	return &url.URL{Scheme: "https", Host: address}, nil
}

// The API server serves its own OpenAPI v3 schemas, which the policy plugin fetches through discovery; the
// fake client set has none, so it is given the ones client-go ships (openapitest). pathsFetched is closed
// once the plugin has read them, so that no case runs before the plugin knows the Pod schema.
type schemaClient struct {
	openapi.Client
	once         sync.Once
	pathsFetched chan struct{}
}

func (c *schemaClient) Paths() (map[string]openapi.GroupVersion, error) {
	paths, err := c.Client.Paths()
	c.once.Do(func() { close(c.pathsFetched) })
	return paths, err
}

type discoveryWithSchemas struct {
	discovery.DiscoveryInterface
	schemas *schemaClient
}

func (d discoveryWithSchemas) OpenAPIV3() openapi.Client { return d.schemas }

type clientWithSchemas struct {
	*fake.Clientset
	schemas *schemaClient
}

func (c clientWithSchemas) Discovery() discovery.DiscoveryInterface {
	return discoveryWithSchemas{c.Clientset.Discovery(), c.schemas}
}

// recordingAttributes keeps the audit annotations the plugins add (the API server writes them to its
// audit log), and hands every call on to the real attributes record.
type recordingAttributes struct {
	admission.Attributes
	mu          sync.Mutex
	annotations map[string]string
}

func (r *recordingAttributes) AddAnnotation(key, value string) error {
	r.record(key, value)
	return r.Attributes.AddAnnotation(key, value)
}

func (r *recordingAttributes) AddAnnotationWithLevel(key, value string, level auditinternal.Level) error {
	r.record(key, value)
	return r.Attributes.AddAnnotationWithLevel(key, value, level)
}

func (r *recordingAttributes) record(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.annotations[key] = value
}

type warnings struct {
	mu    sync.Mutex
	texts []string
}

func (w *warnings) AddWarning(_ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.texts = append(w.texts, text)
}

type noConfig struct{}

func (noConfig) ConfigFor(string) (io.Reader, error) { return nil, nil }

var podResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
var podKind = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}

func restMapper() meta.RESTMapper {
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	mapper.AddSpecific(podKind, podResource, schema.GroupVersionResource{Version: "v1", Resource: "pod"}, meta.RESTScopeNamespace)
	mapper.AddSpecific(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"},
		schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, schema.GroupVersionResource{Version: "v1", Resource: "namespace"}, meta.RESTScopeRoot)
	return mapper
}

// admissionChain builds the mutating part of the API server's admission chain over the scenario's objects.
func admissionChain(in scenario, stop <-chan struct{}) admission.MutationInterface {
	objects := make([]runtime.Object, 0, len(in.Objects))
	hasPolicies := false
	for _, raw := range in.Objects {
		obj := decodeObject(raw)
		if strings.HasPrefix(fmt.Sprintf("%T", obj), "*v1.MutatingAdmissionPolicy") {
			hasPolicies = true
		}
		objects = append(objects, obj)
	}
	schemas := &schemaClient{Client: openapitest.NewEmbeddedFileClient(), pathsFetched: make(chan struct{})}
	client := clientWithSchemas{fake.NewSimpleClientset(objects...), schemas}
	factory := informers.NewSharedInformerFactory(client, 0)

	plugins := admission.NewPlugins()
	mutatingpolicy.Register(plugins)
	mutatingwebhook.Register(plugins)
	init := initializer.New(client, dynamicfake.NewSimpleDynamicClient(clientgoscheme.Scheme), factory,
		authorizerfactory.NewAlwaysAllowAuthorizer(), utilfeature.DefaultFeatureGate,
		compatibility.NewEffectiveVersionFromString("1.36", "", ""), stop, restMapper())
	// The webhook plugin asks the service resolver where a Service's endpoints are; no authentication
	// info is configured, so it calls webhooks without a client certificate, as a default API server does.
	webhooks := webhookinit.NewPluginInitializer(nil, serviceResolver(in.Services))
	chain, err := plugins.NewFromPlugins([]string{mutatingpolicy.PluginName, mutatingwebhook.PluginName}, noConfig{},
		admission.PluginInitializers{init, webhooks}, nil)
	if err != nil {
		fail("building the admission chain: %v", err)
	}
	factory.Start(stop)
	for informerType, synced := range factory.WaitForCacheSync(stop) {
		if !synced {
			fail("informer %v did not sync", informerType)
		}
	}
	if hasPolicies {
		<-schemas.pathsFetched
		time.Sleep(100 * time.Millisecond) // the plugin stores the paths right after reading them
	}
	return chain.(admission.MutationInterface)
}

func main() {
	var in scenario
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail("reading the scenario on stdin: %v", err)
	}
	stop := make(chan struct{})
	defer close(stop)
	out := output{Results: []result{}, Decoded: []*corev1.Pod{}}
	for _, raw := range in.Decode {
		out.Decoded = append(out.Decoded, withTypeMeta(decodePod(raw)))
	}
	if len(in.Cases) > 0 {
		chain := admissionChain(in, stop)
		for _, c := range in.Cases {
			out.Results = append(out.Results, admit(chain, c))
		}
	}
	encoder := json.NewEncoder(os.Stdout)
	if err := encoder.Encode(out); err != nil {
		fail("writing the results: %v", err)
	}
}

func admit(chain admission.MutationInterface, c admissionCase) result {
	pod := decodePod(c.Object)
	var oldPod runtime.Object
	operation := admission.Create
	var options runtime.Object = &metav1.CreateOptions{}
	if c.Operation == "" {
		c.Operation = "CREATE"
	}
	if c.Operation == "UPDATE" {
		operation = admission.Update
		oldPod = decodePod(c.OldObject)
		options = &metav1.UpdateOptions{}
	} else if c.Operation != "CREATE" {
		fail("case %q: operation %q; expected CREATE or UPDATE", c.Name, c.Operation)
	}
	if c.DryRun {
		switch o := options.(type) {
		case *metav1.CreateOptions:
			o.DryRun = []string{metav1.DryRunAll}
		case *metav1.UpdateOptions:
			o.DryRun = []string{metav1.DryRunAll}
		}
	}
	attributes := &recordingAttributes{
		Attributes: admission.NewAttributesRecord(pod, oldPod, podKind, c.Namespace, pod.Name, podResource, c.Subresource,
			operation, options, c.DryRun, &user.DefaultInfo{Name: "system:serviceaccount:kube-system:replicaset-controller"}),
		annotations: map[string]string{},
	}
	recorder := &warnings{}
	ctx, cancel := context.WithTimeout(warning.WithWarningRecorder(context.Background(), recorder), requestTimeout)
	defer cancel()
	err := chain.Admit(ctx, attributes, admission.NewObjectInterfacesFromScheme(clientgoscheme.Scheme))
	res := result{Name: c.Name, Allowed: err == nil, Warnings: recorder.texts, Annotations: attributes.annotations}
	if res.Warnings == nil {
		res.Warnings = []string{}
	}
	if err != nil {
		res.Error = err.Error()
		if status, ok := err.(apierrors.APIStatus); ok {
			res.Code = status.Status().Code
		}
		return res
	}
	mutated, ok := attributes.GetObject().(*corev1.Pod)
	if !ok {
		fail("case %q: the chain returned a %T, not a *corev1.Pod", c.Name, attributes.GetObject())
	}
	res.Object = withTypeMeta(mutated)
	return res
}
