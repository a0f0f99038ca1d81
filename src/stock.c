/*
 * stock.c
 *		Stock changes without long-held locks.
 *
 * LOCK ORDER (README "Concurrency"; every API function follows it):
 *   1. the order rows a call acts on (lock_order, once per order and
 *      transaction: order_lock.c); other people's waiting orders only
 *      with SKIP LOCKED, never waited for;
 *   2. the customer's credit lock (credit.c), held to the end of the
 *      transaction, for any change of credit exposure;
 *   3. stock: never a lock held across calls.  A change of a stock row
 *      takes a per-(warehouse, sku) lock for microseconds (check, record),
 *      and at commit each transaction applies its net changes to the stock
 *      rows in (warehouse_id, sku) order while holding those locks.
 * Since no call holds a stock row while it waits for anything else, a
 * transaction may reserve, release and receive stock of any skus in any
 * order, in as many calls as it likes, without deadlocking with another.
 *
 * How: a change is recorded as a row of stock_pending (and its movement in
 * inventory_movements) by the transaction that makes it.  stock_levels
 * holds the committed quantities; the view stock adds the current
 * transaction's own pending rows.  Availability for a decision is
 *   committed (on_hand - reserved), read with the latest snapshot,
 *   + this transaction's pending changes,
 *   + the pending changes of transactions still in progress that lower
 *     availability (reserves, negative adjustments), read with a dirty
 *     snapshot; their increases are ignored until they commit.
 * That is pessimistic, so the committed rows can never break
 * 0 <= reserved <= on_hand, in any isolation level, and a REPEATABLE READ
 * transaction never fails with 40001 because of stock.  A deferred trigger
 * applies the pending rows at commit and deletes them, in the same
 * transaction, so no other session ever sees them committed.
 *
 * On Citus (citus.c) the stock tables stay on the coordinator, which runs
 * the API.  A trigger on a worker (release on cancellation, ship on
 * dispatch) records its change as an effect of its order instead; the
 * coordinator applies it before it commits.  Such a change never lowers
 * availability, so it cannot fail later than it would have here.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"

#include "order_mgmt.h"

#define STOCK_LOCK_CLASS 0x4F53	/* advisory lock field4 of stock locks ("OS") */

static bool pending_to_apply = false;	/* this transaction recorded a change */

static void
StockXactCallback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PRE_PREPARE)
		pending_to_apply = false;
}

/* The lock of one (warehouse, sku): an advisory lock tag no SQL can make. */
static void
StockLockTag(LOCKTAG *tag, const char *warehouse, const char *sku)
{
	uint32		h1 = hash_bytes((const unsigned char *) warehouse, strlen(warehouse));
	uint32		h2 = hash_bytes((const unsigned char *) sku, strlen(sku));

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, h1, h2, STOCK_LOCK_CLASS);
}

/*
 * Visit the rows of (warehouse, sku) in rel through its index on those two
 * columns, as snapshot shows them; visit() gets the row and its xmin.
 */
static void
ScanByKey(const char *relname, const char *indexname, Datum *keys, Snapshot snapshot,
		void (*visit) (TupleTableSlot *slot, TransactionId xmin, void *arg), void *arg)
{
	Relation	rel = table_open(OmRelid(relname), AccessShareLock);
	Relation	idx = index_open(get_relname_relid(indexname, RelationGetNamespace(rel)),
								 AccessShareLock);
	ScanKeyData key[2];
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	for (int i = 0; i < 2; i++)
		ScanKeyEntryInitialize(&key[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
							   DEFAULT_COLLATION_OID, F_TEXTEQ, keys[i]);
	scan = index_beginscan(rel, idx, snapshot, 2, 0);
	index_rescan(scan, key, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		should_free;
		HeapTuple	tup = ExecFetchSlotHeapTuple(slot, false, &should_free);

		visit(slot, HeapTupleHeaderGetRawXmin(tup->t_data), arg);
		if (should_free)
			heap_freetuple(tup);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
}

static int64
IntAtt(TupleTableSlot *slot, int att)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/* stock_levels: on_hand - reserved (attributes 3 and 4). */
static void
AddCommitted(TupleTableSlot *slot, TransactionId xmin, void *arg)
{
	*(int64 *) arg += IntAtt(slot, 3) - IntAtt(slot, 4);
}

/*
 * stock_pending (on_hand_delta 3, reserved_delta 4): this transaction's
 * changes in full, other transactions' only where they lower availability.
 * The dirty snapshot shows rows of transactions in progress; rows of
 * committed ones are gone (deleted by their own commit-time apply).
 */
static void
AddPending(TupleTableSlot *slot, TransactionId xmin, void *arg)
{
	int64		change = IntAtt(slot, 3) - IntAtt(slot, 4);

	if (change < 0 || TransactionIdIsCurrentTransactionId(xmin))
		*(int64 *) arg += change;
}

/* Availability for a decision by this transaction (as owner). */
static int64
Available(Datum *keys)
{
	int64		avail = 0;
	Snapshot	latest = RegisterSnapshot(GetLatestSnapshot());
	SnapshotData dirty;

	InitDirtySnapshot(dirty);
	ScanByKey("stock_levels", "stock_levels_pkey", keys, latest, AddCommitted, &avail);
	ScanByKey("stock_pending", "stock_pending_stock_idx", keys, &dirty, AddPending, &avail);
	UnregisterSnapshot(latest);
	return avail;
}

/*
 * Returned units that go to scrap, repair or the vendor: a movement with no
 * change of stock (inspect_return), so the ledger says where each went.
 */
static bool
LedgerOnly(const char *kind)
{
	return strcmp(kind, "scrap") == 0 || strcmp(kind, "repair") == 0 ||
		strcmp(kind, "return_to_vendor") == 0;
}

/*
 * Record a change (inside SPI, as owner): its pending row, and its movement
 * unless it is a zero "touch" (a reservation that got nothing still marks
 * the key for the commit-time look at waiting demand).
 */
static void
Record(Datum *keys, const char *kind, int32 dh, int32 dr, FunctionCallInfo fcinfo)
{
	static SPIPlanPtr with_movement = NULL;
	static SPIPlanPtr touch = NULL;
	Oid			argtypes[8] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT8OID, INT4OID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	SPIPlanPtr	plan;

	values[0] = keys[0];
	values[1] = keys[1];
	values[2] = CStringGetTextDatum(kind);
	values[3] = Int32GetDatum(dh);
	values[4] = Int32GetDatum(dr);
	for (int i = 5; i < 8; i++)
	{
		values[i] = PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	if (dh == 0 && dr == 0 && !LedgerOnly(kind))
		plan = OmKeepPlan(&touch, "INSERT INTO " OM_SCHEMA ".stock_pending"
						" (warehouse_id, sku, on_hand_delta, reserved_delta) VALUES ($1, $2, 0, 0)",
						2, argtypes);
	else
		plan = OmKeepPlan(&with_movement, "WITH p AS (INSERT INTO " OM_SCHEMA ".stock_pending"
						" (warehouse_id, sku, on_hand_delta, reserved_delta)"
						" VALUES ($1, $2, $4, $5))"
						" INSERT INTO " OM_SCHEMA ".inventory_movements"
						" (warehouse_id, sku, kind, on_hand_delta, reserved_delta,"
						" order_id, line_no, reason, actor)"
						" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, " OM_SCHEMA ".current_actor())",
						8, argtypes);
	if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record a stock change");
	pending_to_apply = true;
}

static void
RegisterCallback(void)
{
	static bool registered = false;

	if (!registered)
	{
		RegisterXactCallback(StockXactCallback, NULL);
		registered = true;
	}
}

/*
 * On a Citus worker: record the change as an effect of its order, for the
 * coordinator to apply.  Only a change of an order that cannot lower
 * availability can wait for that; anything else is a call the API makes
 * on the coordinator.
 */
static int32
DeferToCoordinator(FunctionCallInfo fcinfo, const char *kind, int32 dh, int32 dr,
				   bool want_partial)
{
	if (want_partial || (int64) dh - dr < 0 || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_OM_CITUS_COORDINATOR),
				 errmsg("stock changes run on the Citus coordinator"),
				 errdetail("This node is a worker; stock lives on the coordinator."),
				 errhint("Call order_mgmt's API on the coordinator.")));
	OmCitusRecordEffect(PG_GETARG_INT64(5), "stock", (Datum) 0, (Datum) 0,
						PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), kind, dh, dr,
						PG_GETARG_DATUM(6), PG_ARGISNULL(6), PG_GETARG_DATUM(7), PG_ARGISNULL(7));
	return dh;
}

/* The stock of a Citus cluster is read on the coordinator only. */
static void
RequireStockNode(void)
{
	if (OmOnCitusWorker())
		ereport(ERROR,
				(errcode(ERRCODE_OM_CITUS_COORDINATOR),
				 errmsg("stock is read on the Citus coordinator"),
				 errhint("Call order_mgmt's API on the coordinator.")));
}

/*
 * The one home of a stock change: under the (warehouse, sku) lock, decide
 * against the pessimistic availability and record it.  want_partial: take
 * what is available of a reservation (returns the reserved quantity);
 * otherwise a change that lowers availability below zero fails with OM014.
 */
static int32
StockChange(FunctionCallInfo fcinfo, bool want_partial)
{
	static const char *const names[] = {"warehouse_id", "sku", "kind", "on_hand_delta",
	"reserved_delta"};
	char	   *warehouse,
			   *sku,
			   *kind;
	Datum		keys[2];
	int32		dh,
				dr;
	int64		avail;
	LOCKTAG		tag;
	OmSavedUser saved;

	OmRequireArgs(fcinfo, names, 5);
	keys[0] = PG_GETARG_DATUM(0);
	keys[1] = PG_GETARG_DATUM(1);
	warehouse = TextDatumGetCString(keys[0]);
	sku = TextDatumGetCString(keys[1]);
	kind = text_to_cstring(PG_GETARG_TEXT_PP(2));
	dh = PG_GETARG_INT32(3);
	dr = PG_GETARG_INT32(4);
	if (OmOnCitusWorker())
		return DeferToCoordinator(fcinfo, kind, dh, dr, want_partial);
	RegisterCallback();

	StockLockTag(&tag, warehouse, sku);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	OmSpiBegin(OmRelid("stock_levels"), &saved);
	avail = Available(keys);
	if (want_partial)
		dr = (int32) Max(Min((int64) dr, avail), 0);
	else if ((int64) dh - dr < 0 && avail + dh - dr < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OM_NOT_ENOUGH_STOCK),
				 errmsg("not enough unreserved stock of \"%s\" in warehouse \"%s\"", sku, warehouse),
				 errdetail("%lld unit(s) are available (on hand, not reserved nor being reserved); the %s needs %d.",
						   (long long) Max(avail, 0), kind, dr - dh),
				 errhint("Cancel or reallocate reservations first.")));
	if (dh != 0 || dr != 0 || want_partial || LedgerOnly(kind))
		Record(keys, kind, dh, dr, fcinfo);
	OmSpiEnd(&saved);
	LockRelease(&tag, ExclusiveLock, false);
	return want_partial ? dr : dh;
}

/*
 * stock_move(warehouse_id, sku, kind, on_hand_delta, reserved_delta,
 * order_id, line_no, reason): record one change of a stock row with its
 * movement.  A change that lowers availability needs it (OM014).
 */
PG_FUNCTION_INFO_V1(stock_move);
Datum
stock_move(PG_FUNCTION_ARGS)
{
	StockChange(fcinfo, false);
	PG_RETURN_VOID();
}

/*
 * stock_reserve(warehouse_id, sku, kind, 0, qty, order_id, line_no, reason)
 * -> the quantity reserved: as much of qty as is available.
 */
PG_FUNCTION_INFO_V1(stock_reserve);
Datum
stock_reserve(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(StockChange(fcinfo, true));
}

/*
 * stock_available(warehouse_id, sku) -> int: what a reservation by this
 * transaction could take now (a hint: another transaction may take it
 * first; stock_reserve decides).
 */
PG_FUNCTION_INFO_V1(stock_available);
Datum
stock_available(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"warehouse_id", "sku"};
	Datum		keys[2];
	OmSavedUser saved;
	int64		avail;

	OmRequireArgs(fcinfo, names, 2);
	RequireStockNode();
	keys[0] = PG_GETARG_DATUM(0);
	keys[1] = PG_GETARG_DATUM(1);
	OmBecomeOwner(OmRelid("stock_levels"), &saved);
	avail = Available(keys);
	OmRestoreUser(&saved);
	PG_RETURN_INT32((int32) Max(Min(avail, PG_INT32_MAX), 0));
}

/*
 * stock_best_warehouse(sku) -> text: the warehouse with the most stock
 * available for the sku to this transaction, ties to the lowest
 * warehouse_id (C order); null when no warehouse has had the sku.
 */
PG_FUNCTION_INFO_V1(stock_best_warehouse);
Datum
stock_best_warehouse(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"sku"};
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {TEXTOID};
	Datum		keys[2];
	OmSavedUser saved;
	text	   *best = NULL;
	int64		best_avail = 0;

	OmRequireArgs(fcinfo, names, 1);
	RequireStockNode();
	keys[1] = PG_GETARG_DATUM(0);
	OmSpiBegin(OmRelid("stock_levels"), &saved);
	if (SPI_execute_snapshot(OmKeepPlan(&plan, "SELECT warehouse_id FROM " OM_SCHEMA ".stock_levels"
									  " WHERE sku OPERATOR(pg_catalog.=) $1 UNION"
									  " SELECT warehouse_id FROM " OM_SCHEMA ".stock_pending"
									  " WHERE sku OPERATOR(pg_catalog.=) $1", 1, argtypes),
							 &keys[1], NULL, GetLatestSnapshot(), InvalidSnapshot, true, false, 0)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not read %s.stock_levels", OM_SCHEMA);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		avail;

		keys[0] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull);
		avail = Available(keys);
		if (best == NULL || avail > best_avail ||
			(avail == best_avail && strcmp(TextDatumGetCString(keys[0]), text_to_cstring(best)) < 0))
		{
			best = (text *) SPI_datumTransfer(keys[0], false, -1);
			best_avail = avail;
		}
	}
	OmSpiEnd(&saved);
	if (best == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(best);
}

/* Apply this transaction's net change of one stock row (inside SPI). */
static void
ApplyOne(Datum *keys, Datum dh, Datum dr)
{
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[4] = {TEXTOID, TEXTOID, INT4OID, INT4OID};
	Datum		values[4] = {keys[0], keys[1], dh, dr};

	/* not INSERT ... ON CONFLICT: its CHECKs would judge the deltas alone */
	OmKeepPlan(&plan, "WITH u AS (UPDATE " OM_SCHEMA ".stock_levels s"
			 " SET on_hand = s.on_hand OPERATOR(pg_catalog.+) $3,"
			 " reserved = s.reserved OPERATOR(pg_catalog.+) $4,"
			 " updated_at = pg_catalog.now()"
			 " WHERE s.warehouse_id OPERATOR(pg_catalog.=) $1"
			 " AND s.sku OPERATOR(pg_catalog.=) $2 RETURNING 1)"
			 " INSERT INTO " OM_SCHEMA ".stock_levels (warehouse_id, sku, on_hand, reserved)"
			 " SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT FROM u)", 4, argtypes);
	/* latest snapshot: the row's newest version is committed (we hold its lock) */
	if (SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 false, true, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not apply a stock change");
}

/*
 * The last look at (warehouse, sku) before commit, now that every change
 * is counted: if demand waits and stock is available, serve it.  This is
 * what closes the race of a receipt and a confirmation that each did not
 * yet see the other.
 */
static void
LastLook(Datum *keys)
{
	static SPIPlanPtr waits = NULL;
	static SPIPlanPtr serve = NULL;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};

	if (SPI_execute_snapshot(OmKeepPlan(&waits, "SELECT 1 FROM " OM_SCHEMA ".order_lines"
									  " WHERE sku OPERATOR(pg_catalog.=) $2"
									  " AND qty_backordered OPERATOR(pg_catalog.>) 0"
									  " AND (warehouse_id OPERATOR(pg_catalog.=) $1"
									  " OR warehouse_id IS NULL) LIMIT 1", 2, argtypes),
							 keys, NULL, GetLatestSnapshot(), InvalidSnapshot, true, false, 1)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not read %s.order_lines", OM_SCHEMA);
	if (SPI_processed == 0 || Available(keys) <= 0)
		return;
	if (SPI_execute_plan(OmKeepPlan(&serve, "SELECT " OM_SCHEMA ".serve_waiting_demand($1, $2)",
								  2, argtypes), keys, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not serve waiting demand");
}

/*
 * stock_apply(): DEFERRABLE INITIALLY DEFERRED constraint trigger on
 * stock_pending.  At commit, applies this transaction's pending changes to
 * stock_levels in (warehouse_id, sku) order, holding each key's lock to the
 * end, deletes them, and takes the last look at waiting demand (serving it
 * records more changes: another round).
 */
PG_FUNCTION_INFO_V1(stock_apply);
Datum
stock_apply(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr sums = NULL;
	static SPIPlanPtr clear = NULL;
	OmSavedUser saved;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "stock_apply must be called as a trigger");
	if (!pending_to_apply)
		return PointerGetDatum(NULL);
	OmSpiBegin(OmRelid("stock_levels"), &saved);
	for (int round = 0; pending_to_apply && round < 100; round++)
	{
		SPITupleTable *tab;
		uint64		n;

		pending_to_apply = false;
		if (SPI_execute_plan(OmKeepPlan(&sums, "SELECT warehouse_id, sku, sum(on_hand_delta)::int4,"
									  " sum(reserved_delta)::int4 FROM " OM_SCHEMA ".stock_pending"
									  " GROUP BY warehouse_id, sku"
									  " ORDER BY warehouse_id COLLATE \"C\", sku COLLATE \"C\"",
									  0, NULL), NULL, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read %s.stock_pending", OM_SCHEMA);
		tab = SPI_tuptable;
		n = SPI_processed;
		for (uint64 r = 0; r < n; r++)
		{
			bool		isnull;
			Datum		v[4];
			LOCKTAG		tag;

			for (int i = 0; i < 4; i++)
				v[i] = SPI_getbinval(tab->vals[r], tab->tupdesc, i + 1, &isnull);
			StockLockTag(&tag, TextDatumGetCString(v[0]), TextDatumGetCString(v[1]));
			(void) LockAcquire(&tag, ExclusiveLock, false, false);	/* held to commit */
			if (DatumGetInt32(v[2]) != 0 || DatumGetInt32(v[3]) != 0)
				ApplyOne(v, v[2], v[3]);
		}
		if (SPI_execute_plan(OmKeepPlan(&clear, "DELETE FROM " OM_SCHEMA ".stock_pending", 0, NULL),
							 NULL, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not clear %s.stock_pending", OM_SCHEMA);
		for (uint64 r = 0; r < n; r++)
		{
			bool		isnull;
			Datum		keys[2];

			keys[0] = SPI_getbinval(tab->vals[r], tab->tupdesc, 1, &isnull);
			keys[1] = SPI_getbinval(tab->vals[r], tab->tupdesc, 2, &isnull);
			LastLook(keys);
		}
	}
	OmSpiEnd(&saved);
	return PointerGetDatum(NULL);
}
