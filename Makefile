# order_mgmt: PGXS build. `make`, `make install`, `make installcheck`.
MODULE_big = order_mgmt
OBJS = \
	src/order_mgmt.o \
	src/cache.o \
	src/lifecycle.o \
	src/events.o \
	src/calendar.o \
	src/reference.o \
	src/promise.o \
	src/order_promise.o \
	src/stock.o \
	src/order_lock.o \
	src/credit.o \
	src/fulfilment.o \
	src/stream.o \
	src/relay.o \
	src/citus.o \
	src/bi.o \
	src/case_path.o \
	src/process_dfg.o

EXTENSION = order_mgmt
EXTVERSION := $(shell sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" order_mgmt.control)
PGFILEDESC = "order_mgmt - order management workflow"

# The current schema, one file per concern, in dependency order; make joins
# them into the full install script of default_version.  The released
# scripts (order_mgmt--0.1.0.sql and the upgrades) are frozen files.
SCHEMA = tables lifecycle events stock payments placement promise fulfilment returns stream bi citus privileges
SCHEMA_SOURCES = $(patsubst %,sql/schema/%.sql,$(SCHEMA))
OM_INSTALL_SCRIPT = build/order_mgmt--$(EXTVERSION).sql
DATA_built = $(OM_INSTALL_SCRIPT)
DATA = $(wildcard sql/order_mgmt--*.sql)
EXTRA_CLEAN = build

# pg_regress inputs live in sql/ and expected/ (listed explicitly).
REGRESS = lifecycle place_order set_status events placement promise fulfilment
REGRESS_OPTS = --load-extension=order_mgmt

# isolation specs live in test/isolation/{specs,expected}
ISOLATION = notify cache_snapshot release_twice refund_race stream lock_once
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=order_mgmt

PG_CPPFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
ifdef WERROR
PG_CPPFLAGS += -Werror
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OM_INSTALL_SCRIPT): $(SCHEMA_SOURCES) order_mgmt.control
	@mkdir -p build
	{ printf '%s\n\n' '/* order_mgmt $(EXTVERSION): the full install script, made by make from sql/schema/ */'; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION order_mgmt" to load this file. \quit'; \
	  for f in $(SCHEMA_SOURCES); do printf '\n-- %s\n' "$$f"; cat "$$f"; done; } >$@

# PGXN release archive order_mgmt-<version>.zip: the committed tree at HEAD
# (git archive, without what .gitattributes marks export-ignore) plus
# META.json, whose version is default_version of order_mgmt.control.
DIST = order_mgmt-$(EXTVERSION)
.PHONY: dist
build/META.json: META.json.in order_mgmt.control
	@mkdir -p build
	sed 's/@VERSION@/$(EXTVERSION)/g' META.json.in >$@
dist: build/META.json
	@git diff --quiet HEAD -- || echo "warning: uncommitted changes are not in $(DIST).zip" >&2
	git archive --format=zip --prefix=$(DIST)/ --add-file=build/META.json -o $(DIST).zip HEAD
