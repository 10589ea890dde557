package telegramtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
)

// maxRequestBody bounds a request: the Bot API accepts 50 MB uploads.
const maxRequestBody = 64 << 20

// params are a request's fields, however they were sent: multipart form
// (go-telegram/bot always uses it, JSON-encoding structured fields), a URL
// query, a urlencoded form or a JSON object.
type params struct {
	values map[string]string
	files  map[string]upload
}

type upload struct {
	filename string
	data     []byte
}

func parseParams(r *http.Request) (*params, error) {
	p := &params{values: map[string]string{}, files: map[string]upload{}}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			p.values[k] = v[0]
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxRequestBody {
		return nil, fmt.Errorf("request body larger than %d bytes", maxRequestBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil // e.g. go-telegram/bot's getMe: a multipart content type and no body
	}
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		form, err := multipart.NewReader(bytes.NewReader(body), ctParams["boundary"]).ReadForm(maxRequestBody)
		if err != nil {
			return nil, err
		}
		defer func() { _ = form.RemoveAll() }()
		for k, v := range form.Value {
			if len(v) > 0 {
				p.values[k] = v[0]
			}
		}
		for k, fhs := range form.File {
			if len(fhs) == 0 {
				continue
			}
			f, err := fhs[0].Open()
			if err != nil {
				return nil, err
			}
			data, err := io.ReadAll(f)
			_ = f.Close()
			if err != nil {
				return nil, err
			}
			p.files[k] = upload{filename: fhs[0].Filename, data: data}
		}
	case "application/json":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		for k, raw := range m {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				p.values[k] = str
			} else if string(raw) != "null" {
				p.values[k] = string(raw)
			}
		}
	default: // application/x-www-form-urlencoded, or unlabelled
		vs, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, v := range vs {
			if len(v) > 0 {
				p.values[k] = v[0]
			}
		}
	}
	return p, nil
}

func (p *params) str(k string) string { return p.values[k] }

func (p *params) has(k string) bool {
	_, ok := p.values[k]
	return ok
}

func (p *params) int64(k string) int64 {
	n, _ := strconv.ParseInt(p.values[k], 10, 64)
	return n
}

func (p *params) int(k string) int { return int(p.int64(k)) }

func (p *params) bool(k string) bool {
	b, _ := strconv.ParseBool(p.values[k])
	return b
}

// json decodes a JSON-encoded field; missing fields leave dest untouched.
func (p *params) json(k string, dest any) error {
	v, ok := p.values[k]
	if !ok || v == "" {
		return nil
	}
	return json.Unmarshal([]byte(v), dest)
}

func (p *params) summary() map[string]string {
	out := make(map[string]string, len(p.values)+len(p.files))
	for k, v := range p.values {
		out[k] = v
	}
	for k, f := range p.files {
		out[k] = fmt.Sprintf("<upload %s, %d bytes>", f.filename, len(f.data))
	}
	return out
}
