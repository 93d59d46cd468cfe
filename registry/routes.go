package registry

import "net/http"

func (r *Registry) routes() {
	r.mux = http.NewServeMux()
}
