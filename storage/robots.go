package storage

import (
	"context"
	"time"
)

// Robot is a robot account of package auth: a name, the hash of its
// secret (never the secret), its own rules as auth's JSON document, an
// expiry (zero: none) and whether an admin disabled it.
type Robot struct {
	Name       string
	SecretHash string
	Rules      string
	ExpiresAt  time.Time
	Disabled   bool
	Created    time.Time
	CreatedBy  string
}

// Robots keeps the robot accounts.
type Robots interface {
	// CreateRobot adds r; ErrConflict when its name is taken.
	CreateRobot(ctx context.Context, r *Robot, evs ...Event) error
	// GetRobot returns the robot named name, or ErrNotFound.
	GetRobot(ctx context.Context, name string) (*Robot, error)
	// ListRobots returns every robot by name.
	ListRobots(ctx context.Context) ([]*Robot, error)
	// SetRobotDisabled disables or enables a robot; ErrNotFound if absent.
	SetRobotDisabled(ctx context.Context, name string, disabled bool, evs ...Event) error
	// DeleteRobot removes a robot; ErrNotFound if absent.
	DeleteRobot(ctx context.Context, name string, evs ...Event) error
}
