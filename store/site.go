package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/fieldops/fieldops"
)

// SiteService implements fieldops.SiteService.
type SiteService struct{ db *DB }

var _ fieldops.SiteService = (*SiteService)(nil)

// NewSiteService returns the site service.
func NewSiteService(db *DB) *SiteService { return &SiteService{db: db} }

const siteColumns = `s.id, s.org_id, s.customer_id, s.name, s.address, s.postcode, s.latitude, s.longitude,
	s.property_type, s.next_inspection_due, s.created_by, s.created_at, s.updated_at`

// siteOfMine: the member created the site or works on one of its jobs.
const siteOfMine = `(s.created_by = $2 OR EXISTS (
	SELECT 1 FROM jobs j JOIN job_assignments a ON a.job_id = j.id
	WHERE j.org_id = s.org_id AND j.site_id = s.id AND a.user_id = $2 AND j.deleted_at IS NULL))`

func scanSite(row pgx.Row, extra ...any) (*fieldops.Site, error) {
	s := &fieldops.Site{}
	dest := append([]any{&s.ID, &s.OrgID, &s.CustomerID, &s.Name, &s.Address, &s.Postcode, &s.Latitude, &s.Longitude,
		&s.PropertyType, &s.NextInspectionDue, &s.CreatedBy, &s.CreatedAt, &s.UpdatedAt}, extra...)
	return s, row.Scan(dest...)
}

func findSite(ctx context.Context, tx pgx.Tx, acc *access, id int64) (*fieldops.Site, *fieldops.Resource, error) {
	var mine bool
	s, err := scanSite(tx.QueryRow(ctx, `SELECT `+siteColumns+`, `+siteOfMine+` FROM sites s
		WHERE s.org_id = $1 AND s.id = $3 AND s.deleted_at IS NULL`, acc.OrgID, acc.UserID, id), &mine)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, notFound("Site")
	}
	if err != nil {
		return nil, nil, err
	}
	r := &fieldops.Resource{OrgID: s.OrgID, CreatedBy: s.CreatedBy}
	if mine {
		r.Assignees = []int64{acc.UserID}
	}
	return s, r, nil
}

// FindSiteByID returns a site; customer.view decides who sees it.
func (s *SiteService) FindSiteByID(ctx context.Context, id int64) (*fieldops.Site, error) {
	var site *fieldops.Site
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagCustomerView); err != nil {
			return err
		}
		var r *fieldops.Resource
		if site, r, err = findSite(ctx, tx, acc, id); err != nil {
			return err
		}
		return acc.check(fieldops.FlagCustomerView, r, "Site")
	})
	return site, err
}

// FindSites lists a customer's sites.
func (s *SiteService) FindSites(ctx context.Context, customerID int64) ([]*fieldops.Site, error) {
	var out []*fieldops.Site
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.load(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagCustomerView); err != nil {
			return err
		}
		_, r, err := findCustomer(ctx, tx, acc, customerID)
		if err != nil {
			return err
		}
		if err := acc.check(fieldops.FlagCustomerView, r, "Customer"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+siteColumns+` FROM sites s
			WHERE s.org_id = $1 AND s.customer_id = $3 AND s.deleted_at IS NULL AND ($4 OR `+siteOfMine+`)
			ORDER BY s.address, s.id`, acc.OrgID, acc.UserID, customerID, acc.Scope(fieldops.FlagCustomerView) == fieldops.ScopeAll)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			site, err := scanSite(rows)
			if err != nil {
				return err
			}
			out = append(out, site)
		}
		return rows.Err()
	})
	return out, err
}

// CreateSite adds a site to a customer (site.manage).
func (s *SiteService) CreateSite(ctx context.Context, u fieldops.SiteUpdate) (*fieldops.Site, error) {
	if err := u.Validate(true); err != nil {
		return nil, err
	}
	if u.PropertyType == nil {
		pt := "owner_occupied"
		u.PropertyType = &pt
	}
	var site *fieldops.Site
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireCreate(fieldops.FlagSiteManage); err != nil {
			return err
		}
		if _, _, err := findCustomer(ctx, tx, acc, u.CustomerID); err != nil {
			return fieldops.Invalid("customer_id", "That customer was not found: choose one from the customer list.")
		}
		site, err = scanSite(tx.QueryRow(ctx, `INSERT INTO sites AS s (org_id, customer_id, name, address, postcode, latitude, longitude, property_type, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+siteColumns,
			acc.OrgID, u.CustomerID, deref(u.Name), *u.Address, deref(u.Postcode), *u.Latitude, *u.Longitude, *u.PropertyType, acc.UserID))
		if err != nil {
			return err
		}
		return s.db.audit(ctx, tx, acc, entry{action: "site.create", targetType: "site", targetID: site.ID,
			changes: map[string]any{"customer_id": site.CustomerID, "address": site.Address, "postcode": site.Postcode,
				"latitude": site.Latitude, "longitude": site.Longitude, "property_type": site.PropertyType}})
	})
	return site, err
}

// UpdateSite changes a site (site.manage).
func (s *SiteService) UpdateSite(ctx context.Context, id int64, u fieldops.SiteUpdate) (*fieldops.Site, error) {
	if err := u.Validate(false); err != nil {
		return nil, err
	}
	var site *fieldops.Site
	err := s.db.inTx(ctx, func(tx pgx.Tx) error {
		acc, err := s.db.loadForWrite(ctx, tx)
		if err != nil {
			return err
		}
		if err := acc.requireAny(fieldops.FlagSiteManage); err != nil {
			return err
		}
		old, r, err := findSite(ctx, tx, acc, id)
		if err != nil {
			return err
		}
		if err := acc.check(fieldops.FlagSiteManage, r, "Site"); err != nil {
			return err
		}
		if u.CustomerID != 0 && u.CustomerID != old.CustomerID {
			return fieldops.Invalid("customer_id", "A site cannot move to another customer; add a new site for that customer instead.")
		}
		changes := map[string]any{}
		diff(changes, "name", old.Name, u.Name)
		diff(changes, "address", old.Address, u.Address)
		diff(changes, "postcode", old.Postcode, u.Postcode)
		diff(changes, "latitude", old.Latitude, u.Latitude)
		diff(changes, "longitude", old.Longitude, u.Longitude)
		diff(changes, "property_type", old.PropertyType, u.PropertyType)
		if len(changes) == 0 {
			site = old
			return nil
		}
		site, err = scanSite(tx.QueryRow(ctx, `UPDATE sites AS s SET name = COALESCE($3, name), address = COALESCE($4, address),
			postcode = COALESCE($5, postcode), latitude = COALESCE($6, latitude), longitude = COALESCE($7, longitude),
			property_type = COALESCE($8, property_type), updated_at = now()
			WHERE org_id = $1 AND id = $2 RETURNING `+siteColumns,
			acc.OrgID, id, u.Name, u.Address, u.Postcode, u.Latitude, u.Longitude, u.PropertyType))
		if err != nil {
			return err
		}
		return s.db.audit(ctx, tx, acc, entry{action: "site.update", targetType: "site", targetID: id, changes: changes})
	})
	return site, err
}
