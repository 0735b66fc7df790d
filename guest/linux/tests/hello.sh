#!/bin/sh
echo "linux-test hello PASS"
