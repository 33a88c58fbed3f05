package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/ccr-infuse/infuse/internal/apperr"
	"github.com/ccr-infuse/infuse/match"
)

// decodeJSON reads a JSON object of the documented shape into v (unknown fields refused). What
// is wrong with a body is said in the service's own words (jsonError): encoding/json's messages
// name the service's Go types, which are no business of the caller's.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			return apperr.New(apperr.Invalid, RuleBody, "send the request body as application/json")
		}
	}
	// Read the (size-limited) body whole first: encoding/json would silently replace invalid
	// UTF-8 with U+FFFD and store text the client never sent.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apperr.New(apperr.Invalid, RuleBody, "the request body could not be read")
	}
	if !utf8.Valid(body) {
		return apperr.New(apperr.Invalid, RuleBody, "the request body is not valid UTF-8")
	}
	if holdsNUL(body) {
		return apperr.New(apperr.Invalid, match.RuleFormat, "the request body holds a NUL character (\\u0000), which no field may")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(body, v, err)
	}
	if dec.More() {
		return apperr.New(apperr.Invalid, RuleBody, "the request body has more than one JSON value")
	}
	return nil
}

// jsonError says what is wrong with body, which encoding/json refused with err when decoding it
// into v: nothing at all, a syntax error and where, a field of the wrong type (by its JSON name)
// and the type it takes, or a field the route does not take.
func jsonError(body []byte, v any, err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.Invalid, RuleBody, "the request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.Invalid, RuleBody, "the request body is not valid JSON: it ends at byte %d before its value does", len(body))
	case errors.As(err, &syntax):
		return apperr.New(apperr.Invalid, RuleBody, "the request body is not valid JSON: syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return apperr.New(apperr.Invalid, RuleBody, "the request body must be a JSON object, not %s", jsonValueKind(typ.Value))
		}
		// Field is the path of JSON names (time_entry_id), never the Go struct's.
		return apperr.New(apperr.Invalid, RuleBody, "field %s must be %s, not %s", typ.Field, jsonTypeOf(typ.Type), jsonValueKind(typ.Value))
	}
	// encoding/json reports an unknown field only as text: find it in the body instead.
	if name, takes, ok := unknownField(body, v); ok {
		return apperr.New(apperr.Invalid, RuleBody, "the request body has an unknown field %q; this route takes %s", name, strings.Join(takes, ", "))
	}
	return apperr.New(apperr.Invalid, RuleBody, "the request body is not the JSON this route takes")
}

// jsonValueKind names the kind of JSON value encoding/json describes as value ("number",
// "number 1e400", "string", "bool", "array", "object").
func jsonValueKind(value string) apperr.Phrase {
	kind, literal, _ := strings.Cut(value, " ")
	switch kind {
	case "number":
		if literal != "" {
			// A number the field's type cannot hold: a fraction or out of range.
			return "a number with a fraction or out of range"
		}
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "array":
		return "an array"
	case "object":
		return "an object"
	}
	return "another kind of value"
}

var (
	textType   = reflect.TypeFor[text]()
	numberType = reflect.TypeFor[json.Number]()
)

// jsonTypeOf names the JSON value a field of Go type t takes.
func jsonTypeOf(t reflect.Type) apperr.Phrase {
	if t == textType || t == numberType {
		return "a string or a number"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another kind of value"
}

// unknownField returns the first key of the JSON object body that names no field of the struct
// v points to, with the JSON names of the fields it has. Keys match field names as
// encoding/json matches them: exactly, or else ignoring case.
func unknownField(body []byte, v any) (string, []string, bool) {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return "", nil, false
	}
	var takes []string
	for i := 0; i < t.Elem().NumField(); i++ {
		f := t.Elem().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		takes = append(takes, name)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return "", nil, false
		}
		known := false
		for _, name := range takes {
			if name == key || strings.EqualFold(name, key) {
				known = true
				break
			}
		}
		if !known {
			return key, takes, true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", nil, false
		}
	}
	return "", nil, false
}

// holdsNUL reports whether a JSON text escapes a NUL character (\u0000) in one of its strings,
// which PostgreSQL cannot store as text. Escapes appear only inside strings, so a scan that
// skips each escaped character finds exactly the NULs.
func holdsNUL(body []byte) bool {
	for i := 0; i < len(body)-1; i++ {
		if body[i] != '\\' {
			continue
		}
		if body[i+1] == 'u' && i+5 < len(body) && string(body[i+2:i+6]) == "0000" {
			return true
		}
		i++ // the escaped character
	}
	return false
}
