# order_mgmt: PGXS build. `make`, `make install`, `make installcheck`.
MODULE_big = order_mgmt
OBJS = \
	src/order_mgmt.o \
	src/lifecycle.o \
	src/events.o \
	src/calendar.o \
	src/reference.o \
	src/promise.o \
	src/order_promise.o

EXTENSION = order_mgmt
DATA = $(wildcard sql/order_mgmt--*.sql)
PGFILEDESC = "order_mgmt - order management workflow"

# pg_regress inputs live in sql/ and expected/ (listed explicitly).
REGRESS = lifecycle place_order set_status events placement promise
REGRESS_OPTS = --load-extension=order_mgmt

# isolation specs live in test/isolation/{specs,expected}
ISOLATION = notify
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=order_mgmt

PG_CPPFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
ifdef WERROR
PG_CPPFLAGS += -Werror
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
