package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the API's OpenAPI 3 document, served at /api/openapi.json. A test checks that
// it parses, names every route and documents every field the answers carry.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", contentJSON)
	w.Write(openAPI)
}
