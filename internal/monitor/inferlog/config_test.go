package inferlog

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func TestConfigFromYAML(t *testing.T) {
	doc := `
sample: 0.1
max_payload_bytes: 4096
redact: [ssn]
buffer: 2048
models: [iris]
dir: /var/log/ferry
format: parquet
max_file_bytes: 1048576
max_file_age: 10m
kafka: {brokers: ["k:9092"], topic: inferlog, timeout: 5s}
http: {url: "http://collector/events", timeout: 2, retries: -1, source: prod}
`
	var got Config
	if err := yaml.UnmarshalStrict([]byte(doc), &got); err != nil {
		t.Fatal(err)
	}
	want := Config{Sample: 0.1, MaxPayloadBytes: 4096, Redact: []string{"ssn"}, Buffer: 2048, Models: []string{"iris"},
		Dir: "/var/log/ferry", Format: "parquet", MaxFileBytes: 1 << 20, MaxFileAge: Duration(10 * time.Minute),
		Kafka: &KafkaConfig{Brokers: []string{"k:9092"}, Topic: "inferlog", Timeout: Duration(5 * time.Second)},
		HTTP:  &HTTPConfig{URL: "http://collector/events", Timeout: Duration(2 * time.Second), Retries: -1, Source: "prod"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("config (-want +got):\n%s", d)
	}
	if err := got.withDefaults().Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := yaml.UnmarshalStrict([]byte("sampel: 1"), &got); err == nil {
		t.Fatal("an unknown field was accepted")
	}
}
