-- An operator runs the readers: their health and the deployment, never bikes' locations or
-- cases (api/deps.py, OperatorDep). Until now operators had to be administrators.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'officer', 'registrar', 'resident', 'auditor', 'operator'));
