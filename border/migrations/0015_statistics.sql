-- Migration statistics (DESIGN §12): counts of crossings kept on write, in the crossing's
-- own transaction (border/statistics.py). Written only by border/statistics_store.py.
--
-- statistics_daily counts crossings by host day; statistics_monthly holds the same counts
-- by month (`month` is its first day), so a year's query reads twelve months and only the
-- days of partial months. Each table holds several cuboids: every crossing's count
-- projected on one set of keys, the keys outside the set written '*' (the sets are in
-- statistics_store.CUBOIDS). Cuboid 0 keeps every key but the reason, one count per
-- crossing; cuboid 1 every key and the reason, one count per crossing and distinct reason
-- code ('none' when it has none), so grouping by reason counts crossings per reason code.
--
-- decision is the final one: 'admit' or 'refer' as decided at the kiosk, then the
-- resolution's outcome ('admit', 'refuse', 'protection'); protection is the resolution's
-- flags joined with '+', or 'none'. Unknown nationality or age band: 'unknown'; no visa:
-- 'none'. No row names a person or a crossing, so erasure and retention never touch them.

CREATE TABLE statistics_daily (
    cuboid        smallint NOT NULL,
    day           date NOT NULL,
    border_point  text NOT NULL,
    nationality   text NOT NULL,
    direction     text NOT NULL,
    decision      text NOT NULL,
    visa_type     text NOT NULL,
    age_band      text NOT NULL,
    protection    text NOT NULL,
    reason        text NOT NULL,
    count         bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (cuboid, day, border_point, nationality, direction, decision, visa_type,
                 age_band, protection, reason)
);

CREATE TABLE statistics_monthly (
    cuboid        smallint NOT NULL,
    month         date NOT NULL CHECK (extract(day FROM month) = 1),
    border_point  text NOT NULL,
    nationality   text NOT NULL,
    direction     text NOT NULL,
    decision      text NOT NULL,
    visa_type     text NOT NULL,
    age_band      text NOT NULL,
    protection    text NOT NULL,
    reason        text NOT NULL,
    count         bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (cuboid, month, border_point, nationality, direction, decision, visa_type,
                 age_band, protection, reason)
);

-- A referral awaiting its resolution keeps what it was counted under that the crossing's
-- row does not hold, so the resolution can move its counts to the outcome; deleted by the
-- resolution, or with the crossing (erasure, retention).
CREATE TABLE statistics_pending (
    crossing_id   uuid PRIMARY KEY REFERENCES crossings (id) ON DELETE CASCADE,
    nationality   text NOT NULL,
    visa_type     text NOT NULL,
    age_band      text NOT NULL
);

-- Counts only grow, or move at a resolution: never deleted.
INSERT INTO service_privileges (table_name, privileges) VALUES
    ('statistics_daily', '{SELECT,INSERT,UPDATE}'),
    ('statistics_monthly', '{SELECT,INSERT,UPDATE}'),
    ('statistics_pending', '{SELECT,INSERT,DELETE}');
