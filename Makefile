# fieldops: the two commands a new user needs.
#   make run   start PostgreSQL and Redis under ./.data, migrate, seed the demo once, serve on localhost
#   make test  go vet and every test with the race detector (starts its own PostgreSQL and Redis)

GO ?= go
ADDR ?= 127.0.0.1:8080

.PHONY: run test build bench services stop-services clean

run: services
	@. ./.data/env && $(GO) run ./cmd/fieldops migrate
	@. ./.data/env && $(GO) run ./cmd/fieldops demo
	@. ./.data/env && FIELDOPS_HTTP_ADDR=$(ADDR) $(GO) run ./cmd/fieldops serve

services:
	@bash .ci/dev-services start

stop-services:
	@bash .ci/dev-services stop

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

build:
	$(GO) build -o bin/fieldops ./cmd/fieldops

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 .

clean: stop-services
	rm -rf .data bin
