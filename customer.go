package fieldops

import (
	"context"
	"strings"
	"time"
)

// Customer is who a contractor works for.
type Customer struct {
	ID        int64
	OrgID     int64
	Name      string
	Email     string
	Phone     string
	Notes     string
	CreatedBy int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CustomerUpdate is both the input of CreateCustomer (all fields) and of
// UpdateCustomer (nil fields stay as they are).
type CustomerUpdate struct {
	Name  *string
	Email *string
	Phone *string
	Notes *string
}

// Validate checks the fields that are set; create requires a name.
func (u *CustomerUpdate) Validate(create bool) error {
	if create && u.Name == nil {
		return Invalid("name", "Customer name is required.")
	}
	if u.Name != nil {
		*u.Name = strings.TrimSpace(*u.Name)
		if err := checkText("name", "Customer name", *u.Name, 1, 200); err != nil {
			return err
		}
	}
	if u.Email != nil && strings.TrimSpace(*u.Email) != "" {
		e, err := NormaliseEmail(*u.Email)
		if err != nil {
			return err
		}
		*u.Email = e
	}
	if u.Phone != nil {
		*u.Phone = strings.TrimSpace(*u.Phone)
		if err := checkText("phone", "Phone number", *u.Phone, 0, 40); err != nil {
			return err
		}
		for _, r := range *u.Phone {
			if !strings.ContainsRune("0123456789+ ()-", r) {
				return Invalid("phone", "Phone number may hold digits, spaces, +, ( ) and - only.")
			}
		}
	}
	if u.Notes != nil {
		if err := checkText("notes", "Notes", *u.Notes, 0, 4000); err != nil {
			return err
		}
	}
	return nil
}

// CustomerFilter narrows FindCustomers; results are ordered by name and
// paged with After, the Next of the previous page.
type CustomerFilter struct {
	NamePrefix string
	After      string
	Limit      int // default 50, at most 200
}

// CustomerService manages customers. customer.view with scope own sees
// the customers of the member's jobs and those they created.
type CustomerService interface {
	FindCustomerByID(ctx context.Context, id int64) (*Customer, error)
	FindCustomers(ctx context.Context, f CustomerFilter) ([]*Customer, string, error)
	CreateCustomer(ctx context.Context, c CustomerUpdate) (*Customer, error)
	UpdateCustomer(ctx context.Context, id int64, u CustomerUpdate) (*Customer, error)
	// DeleteCustomer needs customer.delete and refuses a customer with
	// jobs still to do.
	DeleteCustomer(ctx context.Context, id int64) error
}
