package llmbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// output is one request's measurement, in vLLM's RequestFuncOutput terms.
type output struct {
	success      bool
	err          string
	promptLen    int           // the prompt's r50k tokens
	outputTokens int           // usage.completion_tokens; 0 when the server sent none
	text         string        // the generated text
	start        time.Time     // when the request was sent
	ttft         time.Duration // first content chunk - start
	itl          []time.Duration
	latency      time.Duration // E2EL: last content chunk - start
}

// chunk is the part of a streamed chat or completion chunk the benchmark reads.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Text string `json:"text"`
	} `json:"choices"`
	Usage *struct {
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// body is the JSON request for prompt.
func (c Config) body(prompt string) ([]byte, error) {
	req := map[string]any{
		"model":          c.Model,
		"max_tokens":     c.OutputLen,
		"temperature":    0,
		"ignore_eos":     true,
		"stream":         true,
		"stream_options": map[string]any{"include_usage": true},
	}
	if c.Endpoint == "completions" {
		req["prompt"] = prompt
	} else {
		req["messages"] = []map[string]string{{"role": "user", "content": prompt}}
	}
	return json.Marshal(req)
}

// send runs one streaming request and measures it. Failures are in the output, not
// returned: the benchmark counts them.
func send(ctx context.Context, hc *http.Client, cfg Config, prompt string, promptLen int) output {
	out := output{promptLen: promptLen}
	if err := out.run(ctx, hc, cfg, prompt); err != nil {
		out.success, out.err = false, err.Error()
	}
	return out
}

func (o *output) run(ctx context.Context, hc *http.Client, cfg Config, prompt string) error {
	body, err := cfg.body(prompt)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.BaseURL+cfg.path(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	o.start = time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := o.read(newSSEReader(resp.Body)); err != nil {
		return err
	}
	if o.text == "" {
		return errors.New("the stream had no content chunk")
	}
	o.success = true
	return nil
}

// read consumes the stream up to [DONE] or its end, timing each content chunk.
func (o *output) read(sse *sseReader) error {
	var last time.Time
	var text strings.Builder
	defer func() { o.text = text.String() }()
	for {
		data, err := sse.next()
		if err == io.EOF {
			return nil // a stream may end without [DONE]
		} else if err != nil {
			return fmt.Errorf("reading the stream: %w", err)
		}
		now := time.Now()
		if isDone(data) {
			return nil
		}
		var ch chunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return fmt.Errorf("a stream chunk is not JSON (%v): %.200q", err, data)
		}
		if ch.Error != nil {
			return fmt.Errorf("the server sent an error: %s", ch.Error.Message)
		}
		if ch.Usage != nil {
			o.outputTokens = ch.Usage.CompletionTokens
		}
		if len(ch.Choices) == 0 {
			continue
		}
		content := ch.Choices[0].Delta.Content + ch.Choices[0].Text
		if content == "" {
			continue // a role-only or finish chunk carries no token
		}
		if last.IsZero() {
			o.ttft = now.Sub(o.start)
		} else {
			o.itl = append(o.itl, now.Sub(last))
		}
		last = now
		o.latency = now.Sub(o.start)
		text.WriteString(content)
	}
}
