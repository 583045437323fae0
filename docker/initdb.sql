-- carelog runs as an ordinary role that owns its database (never as a superuser).
CREATE ROLE carelog LOGIN PASSWORD 'carelog';
CREATE DATABASE carelog OWNER carelog;
