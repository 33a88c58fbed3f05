package claims

import (
	"github.com/ccr-infuse/infuse/access"
)

// System is the service acting on its own: the scheduler compiling drafts, or the operator at
// the command line without --as.
var System = access.System

// authorize decides whether u may do a to the claims, through package access, the one place
// authorisation is decided. Claims concern every authority, so no authority is named: a finance
// officer's review (R3.13) is allowed by role alone.
func authorize(u access.User, a access.Action) error {
	return access.Can(u, a, "")
}

// Actor is who acts on a claim: a user of package access, or System.
type Actor = access.User

// Role is a user's role, as package access defines it.
type Role = access.Role
