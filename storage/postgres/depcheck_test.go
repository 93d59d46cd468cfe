package postgres_test

import (
	"testing"

	"github.com/packreg/packreg/internal/depcheck"
)

// TestDependencies: the PostgreSQL backend is sqlmeta plus pgx.
func TestDependencies(t *testing.T) {
	depcheck.Allow(t, ".", "github.com/packreg/packreg/storage/sqlmeta", "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v5/", "github.com/jackc/puddle/v2")
}
