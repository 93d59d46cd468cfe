package metatest

import (
	"testing"
	"time"

	"github.com/packreg/packreg/storage"
)

// robotCases hold every backend to the Robots role: unique names, the
// stored fields as given, disable and delete of what exists only, and an
// event per change.
var robotCases = []testCase{
	{"RobotCRUD", func(t *testing.T, s storage.Store) {
		now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
		r := &storage.Robot{Name: "ci", SecretHash: "abc", Rules: `[{"repositories":["**"],"actions":["pull"]}]`,
			ExpiresAt: now.Add(time.Hour), Created: now, CreatedBy: "root"}
		ok(t, s.CreateRobot(ctx(t), r, ev("robot.create", "robot:ci", "")), "CreateRobot")
		is(t, s.CreateRobot(ctx(t), &storage.Robot{Name: "ci", Created: now}), storage.ErrConflict, "CreateRobot again")
		ok(t, s.CreateRobot(ctx(t), &storage.Robot{Name: "backup", Rules: "[]", Created: now}), "CreateRobot backup")
		got, err := s.GetRobot(ctx(t), "ci")
		ok(t, err, "GetRobot")
		if *got != *r {
			t.Errorf("GetRobot: %+v, want %+v", got, r)
		}
		ok(t, s.SetRobotDisabled(ctx(t), "ci", true, ev("robot.disable", "robot:ci", "")), "disable")
		if got, _ := s.GetRobot(ctx(t), "ci"); !got.Disabled {
			t.Error("not disabled")
		}
		is(t, s.SetRobotDisabled(ctx(t), "nobody", true), storage.ErrNotFound, "disable nobody")
		list, err := s.ListRobots(ctx(t))
		ok(t, err, "ListRobots")
		if len(list) != 2 || list[0].Name != "backup" || list[1].Name != "ci" || !list[0].ExpiresAt.IsZero() {
			t.Errorf("ListRobots: %+v", list)
		}
		ok(t, s.DeleteRobot(ctx(t), "ci", ev("robot.delete", "robot:ci", "")), "DeleteRobot")
		is(t, s.DeleteRobot(ctx(t), "ci"), storage.ErrNotFound, "DeleteRobot again")
		_, err = s.GetRobot(ctx(t), "ci")
		is(t, err, storage.ErrNotFound, "GetRobot deleted")
		_, actions := pending(t, s, storage.AuditConsumer)
		equal(t, actions, []string{"robot.create robot:ci", "robot.disable robot:ci", "robot.delete robot:ci"}, "events")
	}},
}
