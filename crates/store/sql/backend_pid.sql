-- The process id of this session's PostgreSQL backend (as a notification names its sender).
SELECT pg_backend_pid()
