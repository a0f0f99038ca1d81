/*
 * order_mgmt.h
 *		Declarations shared by the order_mgmt C files.
 */
#ifndef ORDER_MGMT_H
#define ORDER_MGMT_H

#include "postgres.h"
#include "utils/jsonb.h"

/* SQLSTATEs of class OM (listed in README.md) */
#define ERRCODE_OM_ILLEGAL_TRANSITION	MAKE_SQLSTATE('O','M','0','0','1')
#define ERRCODE_OM_REQUIREMENT_MISSING	MAKE_SQLSTATE('O','M','0','0','2')
#define ERRCODE_OM_APPEND_ONLY			MAKE_SQLSTATE('O','M','0','0','3')
#define ERRCODE_OM_NOT_FOUND			MAKE_SQLSTATE('O','M','0','0','4')
#define ERRCODE_OM_IDEMPOTENCY_CONFLICT	MAKE_SQLSTATE('O','M','0','0','5')
#define ERRCODE_OM_ALREADY_SHIPPED		MAKE_SQLSTATE('O','M','0','0','6')

#define OM_SCHEMA "order_mgmt"

/* order_mgmt.notify_mode */
typedef enum OmNotifyMode
{
	OM_NOTIFY_OFF,
	OM_NOTIFY_COMMIT
} OmNotifyMode;

/* GUCs (order_mgmt.c) */
extern char *om_actor;
extern char *om_reason;
extern bool om_automated;
extern int	om_notify_mode;

/* One row for the events table; NULL pointers become SQL NULLs. */
typedef struct OmEvent
{
	int64		order_id;
	const char *entity;
	int64		entity_id;
	const char *event_type;
	const char *from_status;
	const char *to_status;
	const char *reason;			/* NULL: take order_mgmt.reason */
	Jsonb	   *payload;
} OmEvent;

/* events.c */
extern int64 EmitEvent(const OmEvent *ev);

/* order_mgmt.c: run catalog work as the owner of an extension table */
typedef struct OmSavedUser
{
	Oid			userid;
	int			sec_context;
} OmSavedUser;

extern Oid	OmRelid(const char *relname);
extern void OmBecomeOwner(Oid relid, OmSavedUser *saved);
extern void OmRestoreUser(const OmSavedUser *saved);

#endif							/* ORDER_MGMT_H */
