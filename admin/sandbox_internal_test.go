package admin

import (
	"testing"

	"github.com/fieldops/fieldops"
)

// TestSandboxUserPerMembership: the same person in two organisations has
// two sandbox accounts, so chatting as them in one organisation can never
// act through their link in the other.
func TestSandboxUserPerMembership(t *testing.T) {
	a := sandboxUser(&fieldops.Member{OrgID: 1, UserID: 42, Name: "Sam Lee"})
	b := sandboxUser(&fieldops.Member{OrgID: 2, UserID: 42, Name: "Sam Lee"})
	c := sandboxUser(&fieldops.Member{OrgID: 1, UserID: 43, Name: "Sam Lee"})
	if a.ID == b.ID || a.ID == c.ID || b.ID == c.ID {
		t.Fatalf("sandbox ids collide: %d %d %d", a.ID, b.ID, c.ID)
	}
	if a.ID != sandboxTelegramID(1, 42) || a.ID >= 1<<53 || a.ID <= sandboxTelegramBase {
		t.Fatalf("id = %d", a.ID)
	}
}
