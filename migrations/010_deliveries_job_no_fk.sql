-- 010_deliveries_job_no_fk.sql: deliveries.job_id stops being a foreign key.
--
-- Done jobs are deleted when they finish (unless kept for a window), so
-- every completion paid for the ON DELETE SET NULL check on deliveries —
-- measured: about a quarter of the queue's throughput on this machine
-- kind. deliveries is the durable record of mail sent; job_id stays as a
-- plain reference for tracing a delivery back to its job while that job
-- still exists (jobs are pruned anyway), and keeps its index.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_job_id_fkey;
