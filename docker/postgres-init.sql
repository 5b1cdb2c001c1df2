-- Run once by the postgres image on an empty volume: the warehouse lives beside Airflow's metadata database.
CREATE DATABASE warehouse OWNER airflow;
