#!/bin/bash
# MWAA startup script (uploaded beside requirements.txt, run before every Airflow component).
#
# The package reads its settings from SPOTIFY_ETL_* variables, but an MWAA environment can
# only be given Airflow configuration options. The CloudFormation stack therefore sets them
# as options of a custom section, `spotify_etl.<name>`, which MWAA hands to this script as
# AIRFLOW__SPOTIFY_ETL__<NAME>; exporting each as SPOTIFY_ETL_<NAME> keeps the stack the one
# place these values are written, and MWAA passes what this script exports on to Airflow.
for name in $(compgen -e); do
    case "$name" in
        AIRFLOW__SPOTIFY_ETL__*)
            key="${name#AIRFLOW__SPOTIFY_ETL__}"
            export "SPOTIFY_ETL_${key^^}=${!name}"
            ;;
    esac
done
unset name key
