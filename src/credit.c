/*
 * credit.c
 *		The credit exposure of a customer, maintained incrementally in
 *		credit_accounts (one row per customer), so a credit decision costs
 *		the same for a customer with 10 or 100,000 open orders.
 *
 * Every change of a customer's exposure and every credit decision takes the
 * customer's credit lock (step 2 of the lock order in stock.c), held to the
 * end of the transaction: credit decisions of one customer are serialised,
 * and a decision always sees the exposure every earlier one left.  The lock
 * is not the customer row, which place_order's foreign key share-locks (a
 * FOR UPDATE there deadlocked place + confirm of one customer, issue 9).
 * The account row is read and written with the latest snapshot: under the
 * lock its newest version is committed, so REPEATABLE READ callers never
 * fail with 40001 because of it.
 *
 * On Citus (citus.c) credit_accounts lives on the coordinator; the money
 * trigger on a worker records its change of exposure as an effect of the
 * order, which the coordinator applies before it commits, and before any
 * credit decision of the same transaction.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "order_mgmt.h"

#define CREDIT_LOCK_CLASS 0x4F43	/* advisory lock field4 of credit locks ("OC") */

static void
LockCustomer(const char *customer)
{
	LOCKTAG		tag;
	uint32		h = hash_bytes((const unsigned char *) customer, strlen(customer));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, h, (uint32) strlen(customer), CREDIT_LOCK_CLASS);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * credit_exposure(customer_id) -> numeric: takes the customer's credit lock
 * and returns the exposure (0 when the customer has none yet).
 */
PG_FUNCTION_INFO_V1(credit_exposure);
Datum
credit_exposure(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"customer_id"};
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[1] = {TEXTOID};
	Datum		arg;
	Datum		result;
	bool		isnull;
	OmSavedUser saved;

	OmRequireArgs(fcinfo, names, 1);
	arg = PG_GETARG_DATUM(0);
	if (OmOnCitusWorker())
		ereport(ERROR,
				(errcode(ERRCODE_OM_CITUS_COORDINATOR),
				 errmsg("credit decisions run on the Citus coordinator"),
				 errhint("Call order_mgmt's API on the coordinator.")));
	if (OmCitusActive())
		OmCitusApplyArmedEffects();	/* what this transaction changed so far */
	LockCustomer(TextDatumGetCString(arg));
	OmSpiBegin(OmRelid("credit_accounts"), &saved);
	if (SPI_execute_snapshot(OmKeepPlan(&plan, "SELECT coalesce((SELECT exposure FROM " OM_SCHEMA
									 ".credit_accounts WHERE customer_id OPERATOR(pg_catalog.=) $1),"
									 " 0::pg_catalog.numeric)", 1, argtypes),
							 &arg, NULL, GetLatestSnapshot(), InvalidSnapshot, true, false, 1)
		!= SPI_OK_SELECT)
		elog(ERROR, "could not read %s.credit_accounts", OM_SCHEMA);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	OmSpiEnd(&saved);
	PG_RETURN_DATUM(result);
}

/*
 * credit_add(customer_id, delta numeric, order_id default null): takes the
 * customer's credit lock and adds delta to the exposure.  On a Citus
 * worker (the money trigger) it records the change as an effect of
 * order_id for the coordinator.
 */
PG_FUNCTION_INFO_V1(credit_add);
Datum
credit_add(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"customer_id", "delta"};
	static SPIPlanPtr plan = NULL;
	Oid			argtypes[2] = {TEXTOID, NUMERICOID};
	Datum		values[2];
	OmSavedUser saved;

	OmRequireArgs(fcinfo, names, 2);
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	if (OmOnCitusWorker())
	{
		if (PG_NARGS() < 3 || PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_OM_CITUS_COORDINATOR),
					 errmsg("credit exposure changes run on the Citus coordinator")));
		OmCitusRecordEffect(PG_GETARG_INT64(2), "credit", values[0], values[1],
							(Datum) 0, (Datum) 0, NULL, 0, 0, (Datum) 0, true, (Datum) 0, true);
		PG_RETURN_VOID();
	}
	LockCustomer(TextDatumGetCString(PG_GETARG_DATUM(0)));
	OmSpiBegin(OmRelid("credit_accounts"), &saved);
	if (SPI_execute_snapshot(OmKeepPlan(&plan, "INSERT INTO " OM_SCHEMA ".credit_accounts AS a"
									 " (customer_id, exposure) VALUES ($1, $2)"
									 " ON CONFLICT (customer_id) DO UPDATE"
									 " SET exposure = a.exposure OPERATOR(pg_catalog.+) $2,"
									 " updated_at = pg_catalog.now()", 2, argtypes),
							 values, NULL, GetLatestSnapshot(), InvalidSnapshot,
							 false, true, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not update %s.credit_accounts", OM_SCHEMA);
	OmSpiEnd(&saved);
	PG_RETURN_VOID();
}
