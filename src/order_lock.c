/*
 * order_lock.c
 *		The order this transaction has locked and marked already.
 *
 * lock_order (placement.sql) locks an order for an API call with an UPDATE
 * of its updated_at: the row lock (step 1 of the lock order, stock.c) and
 * the new row version that makes a REPEATABLE READ caller whose snapshot
 * predates the change fail with 40001 instead of acting on stale lines.
 * Both last to the end of the transaction, so a second call on the same
 * order in the same transaction needs neither again.  The UPDATE costs
 * about 40 us (a row version, the table's CHECKs), a lookup by key about
 * 5 us: a transaction that places, confirms and fulfils an order makes
 * nine such calls.  place_order notes the order it inserts (no other
 * session can see or lock it before the commit).
 *
 * A subtransaction that aborts (an EXCEPTION block, ROLLBACK TO SAVEPOINT)
 * undoes the UPDATE, and the lock with it: the order is forgotten when the
 * subtransaction that noted it, or one it belongs to, aborts.  One order is
 * remembered, the last one noted: several calls on one order are the common
 * case, and any other order is locked with the UPDATE as before.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"

#include "order_mgmt.h"

static bool held = false;
static int64 held_order;
static SubTransactionId held_subid;

/* Every transaction ends with its locks released. */
static void
OrderLockXactCallback(XactEvent event, void *arg)
{
	held = false;
}

/*
 * Subtransaction ids grow within a transaction: the subtransaction that
 * noted the order is the aborting one, or one started inside it, exactly
 * when its id is not smaller than the aborting one's.
 */
static void
OrderLockSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && held && held_subid >= mySubid)
		held = false;
}

/* order_locked_here(order_id bigint) -> boolean */
PG_FUNCTION_INFO_V1(order_locked_here);
Datum
order_locked_here(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!PG_ARGISNULL(0) && held && held_order == PG_GETARG_INT64(0));
}

/* note_order_locked(order_id bigint): the caller has locked and marked it */
PG_FUNCTION_INFO_V1(note_order_locked);
Datum
note_order_locked(PG_FUNCTION_ARGS)
{
	static bool registered = false;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	if (!registered)
	{
		RegisterXactCallback(OrderLockXactCallback, NULL);
		RegisterSubXactCallback(OrderLockSubXactCallback, NULL);
		registered = true;
	}
	held = true;
	held_order = PG_GETARG_INT64(0);
	held_subid = GetCurrentSubTransactionId();
	PG_RETURN_VOID();
}
