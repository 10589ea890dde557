package fieldops

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Property types decide the default EICR interval of a site.
var PropertyTypes = []string{"owner_occupied", "rented", "hmo", "commercial", "industrial", "caravan", "swimming_pool"}

// Site is a place where work is done; its coordinates are what check-in
// compares against.
type Site struct {
	ID                int64
	OrgID             int64
	CustomerID        int64
	Name              string
	Address           string
	Postcode          string
	Latitude          float64
	Longitude         float64
	PropertyType      string
	NextInspectionDue *time.Time
	CreatedBy         int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// MapURL links to the site on a map.
func (s *Site) MapURL() string {
	return fmt.Sprintf("https://www.openstreetmap.org/?mlat=%.6f&mlon=%.6f#map=17/%.6f/%.6f", s.Latitude, s.Longitude, s.Latitude, s.Longitude)
}

// SiteUpdate is the input of CreateSite (CustomerID, Address, Latitude and
// Longitude required) and of UpdateSite (nil fields stay as they are;
// the customer of a site cannot change).
type SiteUpdate struct {
	CustomerID   int64
	Name         *string
	Address      *string
	Postcode     *string
	Latitude     *float64
	Longitude    *float64
	PropertyType *string
}

// Validate checks the fields that are set.
func (u *SiteUpdate) Validate(create bool) error {
	if create {
		if u.CustomerID <= 0 {
			return Invalid("customer_id", "Choose the customer this site belongs to.")
		}
		if u.Address == nil {
			return Invalid("address", "Site address is required.")
		}
		if u.Latitude == nil || u.Longitude == nil {
			return Invalid("latitude", "Site latitude and longitude are required: check-in compares against them.")
		}
	}
	if u.Name != nil {
		*u.Name = strings.TrimSpace(*u.Name)
		if err := checkText("name", "Site name", *u.Name, 0, 200); err != nil {
			return err
		}
	}
	if u.Address != nil {
		*u.Address = strings.TrimSpace(*u.Address)
		if err := checkText("address", "Site address", *u.Address, 1, 500); err != nil {
			return err
		}
	}
	if u.Postcode != nil {
		*u.Postcode = strings.ToUpper(strings.TrimSpace(*u.Postcode))
		if err := checkText("postcode", "Postcode", *u.Postcode, 0, 10); err != nil {
			return err
		}
	}
	if u.Latitude != nil && (*u.Latitude < -90 || *u.Latitude > 90 || *u.Latitude != *u.Latitude) {
		return Invalid("latitude", "Latitude must be between -90 and 90 (e.g. 53.4808 for Manchester).")
	}
	if u.Longitude != nil && (*u.Longitude < -180 || *u.Longitude > 180 || *u.Longitude != *u.Longitude) {
		return Invalid("longitude", "Longitude must be between -180 and 180 (e.g. -2.2426 for Manchester).")
	}
	if u.PropertyType != nil {
		ok := false
		for _, p := range PropertyTypes {
			ok = ok || p == *u.PropertyType
		}
		if !ok {
			return Invalid("property_type", "Property type must be one of %s.", strings.Join(PropertyTypes, ", "))
		}
	}
	return nil
}

// SiteService manages sites; site.manage changes them, customer.view
// decides who sees them.
type SiteService interface {
	FindSiteByID(ctx context.Context, id int64) (*Site, error)
	FindSites(ctx context.Context, customerID int64) ([]*Site, error)
	CreateSite(ctx context.Context, s SiteUpdate) (*Site, error)
	UpdateSite(ctx context.Context, id int64, u SiteUpdate) (*Site, error)
}
