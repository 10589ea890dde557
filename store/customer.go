package store

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// CustomerService implements fieldops.CustomerService.
type CustomerService struct{ db *DB }

var _ fieldops.CustomerService = (*CustomerService)(nil)

// NewCustomerService returns the customer service.
func NewCustomerService(db *DB) *CustomerService { return &CustomerService{db: db} }

const customerColumns = `c.id, c.org_id, c.name, c.email, c.phone, c.notes, c.created_by, c.created_at, c.updated_at`

// customerOfMine is true when the member created the customer or is
// assigned to one of its jobs: what scope own allows.
const customerOfMine = `(c.created_by = $2 OR EXISTS (
	SELECT 1 FROM jobs j JOIN job_assignments a ON a.job_id = j.id
	WHERE j.org_id = c.org_id AND j.customer_id = c.id AND a.user_id = $2 AND j.deleted_at IS NULL))`

func scanCustomer(row pgx.Row) (*fieldops.Customer, error) {
	c := &fieldops.Customer{}
	err := row.Scan(&c.ID, &c.OrgID, &c.Name, &c.Email, &c.Phone, &c.Notes, &c.CreatedBy, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

// findCustomer loads a customer of the organisation and the resource a
// permission check needs (assignees holds the member when they work on
// one of its jobs).
func findCustomer(ctx context.Context, tx pgx.Tx, acc *access, id int64) (*fieldops.Customer, *fieldops.Resource, error) {
	var mine bool
	c := &fieldops.Customer{}
	err := tx.QueryRow(ctx, `SELECT `+customerColumns+`, `+customerOfMine+` FROM customers c
		WHERE c.org_id = $1 AND c.id = $3 AND c.deleted_at IS NULL`, acc.OrgID, acc.UserID, id).Scan(
		&c.ID, &c.OrgID, &c.Name, &c.Email, &c.Phone, &c.Notes, &c.CreatedBy, &c.CreatedAt, &c.UpdatedAt, &mine)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, notFound("Customer")
	}
	if err != nil {
		return nil, nil, err
	}
	r := &fieldops.Resource{OrgID: c.OrgID, CreatedBy: c.CreatedBy}
	if mine {
		r.Assignees = []int64{acc.UserID}
	}
	return c, r, nil
}

// FindCustomerByID returns a customer (customer.view).
func (s *CustomerService) FindCustomerByID(ctx context.Context, id int64) (*fieldops.Customer, error) {
	var c *fieldops.Customer
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagCustomerView); err != nil {
			return err
		}
		var r *fieldops.Resource
		if c, r, err = findCustomer(ctx, tx, acc, id); err != nil {
			return err
		}
		return acc.check(fieldops.FlagCustomerView, r, "Customer")
	})
	return c, err
}

// FindCustomers lists customers by name (customer.view; scope own lists
// only the member's).
func (s *CustomerService) FindCustomers(ctx context.Context, f fieldops.CustomerFilter) ([]*fieldops.Customer, string, error) {
	switch {
	case f.Limit < 0 || f.Limit > 200:
		return nil, "", fieldops.Invalid("limit", "Page size must be between 1 and 200.")
	case f.Limit == 0:
		f.Limit = 50
	}
	var (
		out  []*fieldops.Customer
		next string
	)
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagCustomerView); err != nil {
			return err
		}
		afterName, afterID := "", int64(0)
		if f.After != "" {
			if afterName, afterID, err = decodeNameCursor(f.After); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, `SELECT `+customerColumns+`, lower(c.name) FROM customers c
			WHERE c.org_id = $1 AND c.deleted_at IS NULL
			  AND ($3 OR `+customerOfMine+`)
			  AND ($4 = '' OR lower(c.name) LIKE $4 || '%')
			  AND ($5 = 0 OR (lower(c.name), c.id) > ($6, $5))
			ORDER BY lower(c.name), c.id LIMIT $7`,
			acc.OrgID, acc.UserID, acc.Scope(fieldops.FlagCustomerView) == fieldops.ScopeAll,
			likePrefix(f.NamePrefix), afterID, afterName, f.Limit+1)
		if err != nil {
			return err
		}
		defer rows.Close()
		var lowered []string // the sort key as Postgres computes it, for the cursor
		for rows.Next() {
			c := &fieldops.Customer{}
			var low string
			if err := rows.Scan(&c.ID, &c.OrgID, &c.Name, &c.Email, &c.Phone, &c.Notes, &c.CreatedBy, &c.CreatedAt, &c.UpdatedAt, &low); err != nil {
				return err
			}
			out, lowered = append(out, c), append(lowered, low)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) > f.Limit {
			out = out[:f.Limit]
			next = encodeNameCursor(lowered[f.Limit-1], out[f.Limit-1].ID)
		}
		return nil
	})
	return out, next, err
}

// CreateCustomer adds a customer (customer.create).
func (s *CustomerService) CreateCustomer(ctx context.Context, u fieldops.CustomerUpdate) (*fieldops.Customer, error) {
	if err := u.Validate(true); err != nil {
		return nil, err
	}
	var c *fieldops.Customer
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireCreate(fieldops.FlagCustomerCreate); err != nil {
			return err
		}
		c, err = scanCustomer(tx.QueryRow(ctx, `INSERT INTO customers AS c (org_id, name, email, phone, notes, created_by)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+customerColumns,
			acc.OrgID, *u.Name, deref(u.Email), deref(u.Phone), deref(u.Notes), acc.UserID))
		if err != nil {
			return err
		}
		return s.db.audit(ctx, tx, acc, entry{action: "customer.create", targetType: "customer", targetID: c.ID,
			changes: map[string]any{"name": c.Name, "email": c.Email, "phone": c.Phone}})
	})
	return c, err
}

// UpdateCustomer changes a customer (customer.edit).
func (s *CustomerService) UpdateCustomer(ctx context.Context, id int64, u fieldops.CustomerUpdate) (*fieldops.Customer, error) {
	if err := u.Validate(false); err != nil {
		return nil, err
	}
	var c *fieldops.Customer
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagCustomerEdit); err != nil {
			return err
		}
		old, r, err := findCustomer(ctx, tx, acc, id)
		if err != nil {
			return err
		}
		if err := acc.check(fieldops.FlagCustomerEdit, r, "Customer"); err != nil {
			return err
		}
		changes := map[string]any{}
		diff(changes, "name", old.Name, u.Name)
		diff(changes, "email", old.Email, u.Email)
		diff(changes, "phone", old.Phone, u.Phone)
		diff(changes, "notes", old.Notes, u.Notes)
		if len(changes) == 0 {
			c = old
			return nil
		}
		c, err = scanCustomer(tx.QueryRow(ctx, `UPDATE customers AS c SET name = COALESCE($3, name), email = COALESCE($4, email),
			phone = COALESCE($5, phone), notes = COALESCE($6, notes), updated_at = now()
			WHERE org_id = $1 AND id = $2 RETURNING `+customerColumns, acc.OrgID, id, u.Name, u.Email, u.Phone, u.Notes))
		if err != nil {
			return err
		}
		return s.db.audit(ctx, tx, acc, entry{action: "customer.update", targetType: "customer", targetID: id, changes: changes})
	})
	return c, err
}

// DeleteCustomer removes a customer (customer.delete). One with jobs still
// to do is refused; its history stays for the records.
func (s *CustomerService) DeleteCustomer(ctx context.Context, id int64) error {
	return s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagCustomerDelete); err != nil {
			return err
		}
		c, r, err := findCustomer(ctx, tx, acc, id)
		if err != nil {
			return err
		}
		if err := acc.check(fieldops.FlagCustomerDelete, r, "Customer"); err != nil {
			return err
		}
		var open int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE org_id = $1 AND customer_id = $2
			AND status IN ('scheduled', 'in_progress') AND deleted_at IS NULL`, acc.OrgID, id).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			return fieldops.Errorf(fieldops.ECONFLICT, "%s has %d job(s) still to do: complete or cancel them first.", c.Name, open)
		}
		if _, err := tx.Exec(ctx, `UPDATE customers SET deleted_at = now(), updated_at = now() WHERE org_id = $1 AND id = $2`, acc.OrgID, id); err != nil {
			return err
		}
		return s.db.audit(ctx, tx, acc, entry{action: "customer.delete", targetType: "customer", targetID: id,
			changes: map[string]any{"name": c.Name}})
	})
}

// diff records a change of a text field when the update sets it to a
// different value.
func diff[T comparable](changes map[string]any, name string, old T, to *T) {
	if to != nil && *to != old {
		changes[name] = change{From: old, To: *to}
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// likePrefix escapes a user's text for use as a LIKE prefix.
func likePrefix(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

func encodeNameCursor(name string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10) + "." + name))
}

func decodeNameCursor(s string) (string, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		ids, name, ok := strings.Cut(string(b), ".")
		id, err := strconv.ParseInt(ids, 10, 64)
		if ok && err == nil && id > 0 {
			return name, id, nil
		}
	}
	return "", 0, fieldops.Invalid("after", "The page link is not valid; go back to the first page.")
}
