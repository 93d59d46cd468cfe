package postgres

import "testing"

// The pool's size: DefaultMaxConns unless the DSN sets pool_max_conns, in
// either DSN form. It was pgx's max(4, CPUs), 4 on a two-core machine.
func TestPoolSize(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		want int32
	}{
		{"postgres://u@db/x?sslmode=disable", DefaultMaxConns},
		{"postgres://u@db/x?sslmode=disable&pool_max_conns=3", 3},
		{"host=db user=u dbname=x", DefaultMaxConns},
		{"host=db user=u dbname=x pool_max_conns=5", 5},
	} {
		cfg, err := poolConfig(c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MaxConns != c.want {
			t.Errorf("poolConfig(%q): MaxConns %d, want %d", c.dsn, cfg.MaxConns, c.want)
		}
	}
}
