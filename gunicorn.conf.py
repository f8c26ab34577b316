"""gunicorn's settings that every way of running the web server shares (it reads this file from
the directory it starts in): the demo, the production image and the benchmarks. Workers, threads
and the address stay on each command line.

An idle keep-alive connection is kept 75 s, longer than a load balancer keeps its own (60 s by
default on AWS's): when the server closed first (gunicorn's default is 2 s), a request sent on the
connection as it closed got no answer, a 502 behind the load balancer and a dropped poll of the
deployment page in the demo."""

keepalive = 75
