/*
 * fulfilment.c
 *		What an order's lines say about its shipping status: the one home of
 *		the roll-up rule (lines_status) and of the check that a shipping- or
 *		delivered-class order status agrees with the lines, which the
 *		lifecycle trigger applies to every UPDATE of orders.status.
 *
 * The rule, over the lines not cancelled (open = qty - qty_cancelled):
 *   nothing shipped                          -> no shipping status (NULL)
 *   0 < shipped < open                       -> partially_shipped
 *   shipped = open, delivered < shipped      -> shipped
 *   shipped = open = delivered               -> delivered
 * (the CHECKs of order_lines make the sums equivalent to the same test on
 * every line: qty_shipped + qty_cancelled <= qty, qty_delivered <= qty_shipped).
 * The rule names its targets, as API functions do; the check compares
 * classes (statuses.class), so a status added to the graph in the shipping
 * class is judged by what its class claims.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "order_mgmt.h"

/* The statuses the roll-up rule can imply (each is a seed status of orders). */
static const char *const rollup_targets[] = {"partially_shipped", "shipped", "delivered"};

typedef struct LineTotals
{
	int64		open;			/* ordered minus cancelled */
	int64		shipped;
	int64		delivered;
} LineTotals;

/*
 * Sum the lines of an order, as the owner, with the latest snapshot (a
 * dispatch committed while this transaction waited for the order row
 * counts; this transaction's own changes count too).
 */
static void
ReadTotals(int64 order_id, LineTotals *t)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(order_id)};
	OmSavedUser saved;
	bool		isnull;

	OmSpiBegin(OmRelid("order_lines"), &saved);
	OmKeepPlan(&plan, "SELECT coalesce(sum(qty OPERATOR(pg_catalog.-) qty_cancelled), 0)::int8,"
			   " coalesce(sum(qty_shipped), 0)::int8, coalesce(sum(qty_delivered), 0)::int8"
			   " FROM " OM_SCHEMA ".order_lines WHERE order_id OPERATOR(pg_catalog.=) $1",
			   1, argtypes);
	if (SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 true, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read %s.order_lines", OM_SCHEMA);
	t->open = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	t->shipped = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	t->delivered = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	OmSpiEnd(&saved);
}

/* The roll-up rule (see the file header); NULL when nothing has shipped. */
static const char *
Implied(const LineTotals *t)
{
	if (t->shipped <= 0)
		return NULL;
	if (t->shipped < t->open)
		return rollup_targets[0];
	if (t->delivered < t->shipped)
		return rollup_targets[1];
	return rollup_targets[2];
}

static bool
IsRollupTarget(const char *status)
{
	for (int i = 0; i < (int) lengthof(rollup_targets); i++)
		if (strcmp(status, rollup_targets[i]) == 0)
			return true;
	return false;
}

static bool
ClassIs(const char *class, const char *name)
{
	return class != NULL && strcmp(class, name) == 0;
}

/*
 * Called by the lifecycle trigger for every legal move of an order: entering
 * a status of class shipping or delivered needs lines that imply a status of
 * the same class; a status the rule itself can imply must be exactly the one
 * it implies (so "shipped" with units still to ship is refused).  OM030.
 */
void
OmCheckLinesAgree(int64 order_id, const char *to)
{
	const char *to_class = OmStatusClass("order", to);
	const char *implied;
	LineTotals	t;

	if (!ClassIs(to_class, "shipping") && !ClassIs(to_class, "delivered"))
		return;
	ReadTotals(order_id, &t);
	implied = Implied(&t);
	if (implied != NULL && ClassIs(OmStatusClass("order", implied), to_class) &&
		(strcmp(to, implied) == 0 || !IsRollupTarget(to)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OM_LINES_DISAGREE),
			 errmsg("order %lld cannot become \"%s\"", (long long) order_id, to),
			 errdetail("Its lines have %lld of %lld open unit(s) shipped and %lld delivered, which makes it %s%s%s.",
					   (long long) t.shipped, (long long) t.open, (long long) t.delivered,
					   implied ? "\"" : "", implied ? implied : "not shipped at all",
					   implied ? "\"" : ""),
			 errhint("The shipping status of an order follows its shipments: dispatch_shipment and record_tracking_event set it.")));
}

/*
 * lines_status(order_id) -> text: the status the order's lines imply
 * (partially_shipped, shipped, delivered), NULL when nothing has shipped.
 * The order roll-up (fulfilment.sql) moves orders to it.
 */
PG_FUNCTION_INFO_V1(lines_status);
Datum
lines_status(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"order_id"};
	LineTotals	t;
	const char *implied;

	OmRequireArgs(fcinfo, names, 1);
	ReadTotals(PG_GETARG_INT64(0), &t);
	implied = Implied(&t);
	if (implied == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(implied));
}
