-- Erasure (/deleteme): a ledger row's note (a reason typed by staff, e.g. for a revoke) may be
-- emptied; everything else in a ledger row stays as written (amounts, who, why, when). The
-- column list is complete: tests/services/test_erasure.py fails when a ledger column is missing here.
DROP TRIGGER ledger_no_update;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
WHEN NEW.id IS NOT OLD.id OR NEW.community_id IS NOT OLD.community_id OR NEW.member_id IS NOT OLD.member_id
     OR NEW.delta IS NOT OLD.delta OR NEW.reason IS NOT OLD.reason OR NEW.task_id IS NOT OLD.task_id
     OR NEW.voucher_id IS NOT OLD.voucher_id OR NEW.organisation_id IS NOT OLD.organisation_id
     OR NEW.idempotency_key IS NOT OLD.idempotency_key OR NEW.actor_id IS NOT OLD.actor_id
     OR NEW.created_at IS NOT OLD.created_at OR (NEW.note IS NOT NULL AND NEW.note IS NOT OLD.note)
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are append-only');
END;
