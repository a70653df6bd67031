#!/usr/bin/env python3
"""business_time_reference.py DIR: an independent reference for contract section 10.2.

Writes DIR/cfg.toml (four calendars around daylight-saving changes: Amsterdam with a
working period across its 02:00 changes, Los Angeles, Santiago whose clocks skip
midnight, Lord Howe with its half-hour change; one override per calendar and deadline
form), DIR/in.jsonl (random customer messages within three days of each change) and
DIR/expect.json (thread id -> the deadline computed here with Python's zoneinfo, by
walking dates and minutes, not by the project's code).
"""
import sys
import random, json, datetime
from zoneinfo import ZoneInfo
UTC=datetime.timezone.utc
random.seed(7)
OUT=sys.argv[1]
zones={"AMS":("Europe/Amsterdam","01:30","03:30",["2026-03-30","2026-10-26"],["mon","tue","wed","thu","fri","sun"]),
       "LAX":("America/Los_Angeles","09:00","17:00",["2026-11-26"],["mon","tue","wed","thu","fri"]),
       "SCL":("America/Santiago","00:00","23:59",["2026-09-07"],["mon","tue","wed","thu","fri","sat","sun"]),
       "LHI":("Australia/Lord_Howe","01:45","02:45",[],["sun","mon","sat"])}
modes=[("bd",1),("bd",2),("bd",3),("bh",60),("bh",480),("bh",810)]
WD=["mon","tue","wed","thu","fri","sat","sun"]
lines=[]
lines.append('[engine]\nretention = "7d"\n')
for k,(z,f,t,h,wd) in zones.items():
    lines.append(f'[calendars.{k}]\ntime_zone = "{z}"\nworking_days = {json.dumps(wd)}\nworking_hours = {{ from = "{f}", to = "{t}" }}\nholidays = {json.dumps(h)}\n')
lines.append('''[[rules]]
name = "customer_reply"
key = "thread_id"
opens_on = [{ type = "customer_message.received" }]
deadline = { after = "48h" }
warn_before = []
closes_on = ["customer_message.replied"]
severity = "high"
action = "Reply."
''')
for k in zones:
    for m,n in modes:
        code=f"{k}{m}{n}"
        dl = f'{{ business_days = {n}, calendar = "{k}" }}' if m=="bd" else f'{{ business_hours = "{n}m", calendar = "{k}" }}'
        lines.append(f'[[rules.overrides]]\nwhen = [{{ field = "marketplace", equals = "{code}" }}]\ndeadline = {dl}\n')
open(f"{OUT}/cfg.toml","w").write("\n".join(lines))

def local(u, zi):  # u: aware UTC datetime
    return u.astimezone(zi).replace(tzinfo=None)
def instant_of(date, hh, mm, zi):
    dt=datetime.datetime(date.year,date.month,date.day,hh,mm)
    # smallest u with local(u) >= dt, scanning minutes from dt-16h
    u=(dt - datetime.timedelta(hours=16)).replace(tzinfo=UTC)
    u=u.replace(second=0, microsecond=0)
    while local(u,zi) < dt:
        u+=datetime.timedelta(minutes=1)
    # refine back to exact instant: local(u) >= dt and local(u-1min) < dt; local granularity is minutes for these zones
    return u
def is_bd(d, k):
    z,f,t,h,wd=zones[k]
    return WD[d.weekday()] in wd and d.isoformat() not in h
def business_days(s,n,k):
    zi=ZoneInfo(zones[k][0]); d=local(s,zi).date(); c=0
    while c<n:
        d+=datetime.timedelta(days=1)
        if is_bd(d,k): c+=1
    return instant_of(d+datetime.timedelta(days=1),0,0,zi)
def business_hours(s,minutes,k):
    z,f,t,h,wd=zones[k]; zi=ZoneInfo(z)
    fh,fm=map(int,f.split(":")); th,tm=map(int,t.split(":"))
    left=datetime.timedelta(minutes=minutes); d=local(s,zi).date()
    while True:
        if is_bd(d,k):
            a=max(instant_of(d,fh,fm,zi),s); b=instant_of(d,th,tm,zi)
            if a<b:
                if b-a>=left: return a+left
                left-=b-a
        d+=datetime.timedelta(days=1)
centers=["2026-03-29T01:00:00Z","2026-10-25T01:00:00Z","2026-03-08T10:00:00Z","2026-11-01T09:00:00Z","2026-09-06T04:00:00Z","2026-04-05T03:00:00Z","2026-04-04T15:00:00Z","2026-10-03T15:00:00Z","2026-11-25T20:00:00Z"]
events=[]; expect={}
i=0
for c in centers:
    c=datetime.datetime.fromisoformat(c.replace("Z","+00:00"))
    for _ in range(120):
        s=c+datetime.timedelta(minutes=random.randint(-72*60,72*60))
        if random.random()<0.3: s=s.replace(minute=random.choice([0,30,45]))
        k=random.choice(list(zones)); m,n=random.choice(modes)
        d=business_days(s,n,k) if m=="bd" else business_hours(s,n,k)
        code=f"{k}{m}{n}"
        tid=f"T{i}"; i+=1
        events.append((s,json.dumps({"specversion":"1.0","id":f"e{i}","source":"x","type":"customer_message.received","time":s.strftime("%Y-%m-%dT%H:%M:%SZ"),"data":{"thread_id":tid,"marketplace":code}})))
        expect[tid]=(d.strftime("%Y-%m-%dT%H:%M:%S.000Z"),code,s.isoformat())
events.sort(key=lambda e:e[0])
open(f"{OUT}/in.jsonl","w").write("\n".join(e[1] for e in events)+"\n")
json.dump(expect,open(f"{OUT}/expect.json","w"))
print(len(events))
