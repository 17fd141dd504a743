// Package dashboard is the federation lead's dashboard: static HTML, CSS and JavaScript
// embedded in the coordinator binary, so it works on networks that block every CDN. It reads
// everything it shows from the coordinator's API with the token the user logs in with.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the dashboard's files.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FileServerFS(sub)
}
