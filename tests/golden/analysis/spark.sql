-- main
WITH lk_exposures AS (
  SELECT
    hash_value AS lk_eunit,
    timestamp AS lk_eat,
    variation_id AS lk_earm,
    GET_JSON_OBJECT(attributes, '$.country') AS lk_edim0
  FROM exposures
  WHERE
    experiment_key = 'planted'
    AND timestamp >= CAST('2026-03-01 00:00:00' AS TIMESTAMP)
    AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
    AND hash_value IN (
      SELECT
        user_id
      FROM (
        SELECT
          user_id
        FROM identities
        WHERE
          user_id <> 'u0'
      ) AS lk_seg
    )
), lk_units AS (
  SELECT
    lk_eunit AS lk_unit,
    MIN(lk_eat) AS lk_first,
    CAST(MIN(lk_eat) AS DATE) AS lk_date,
    CASE WHEN MIN(lk_earm) = MAX(lk_earm) THEN MIN(lk_earm) ELSE -1 END AS lk_variation,
    MIN(lk_edim0) AS lk_dim0
  FROM lk_exposures
  GROUP BY
    lk_eunit
), lk_agg0 AS (
  SELECT
    u.lk_unit AS lk_key,
    MIN(u.lk_variation) AS lk_bvar,
    MIN(u.lk_date) AS lk_bday,
    MIN(u.lk_first) AS lk_bfirst,
    MIN(u.lk_dim0) AS lk_bdim0,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 ELSE 0 END) AS lk_c0,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
        ELSE 0
      END
    ) AS lk_c1,
    SUM(CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c2,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN lk_f.amount
      END
    ) AS lk_c3,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c4,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first + INTERVAL 3600 SECOND
        AND lk_f.timestamp < u.lk_first + INTERVAL 262800 SECOND
        THEN lk_f.amount
      END
    ) AS lk_c5,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN lk_f.amount
      END
    ) AS lk_c6,
    COUNT(
      CASE
        WHEN lk_f.timestamp >= u.lk_first
        AND lk_f.timestamp >= CAST('2026-03-09 00:00:00' AS TIMESTAMP)
        THEN 1
      END
    ) AS lk_c7,
    COUNT(DISTINCT CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c8
  FROM lk_units AS u
  LEFT JOIN (
    SELECT
      *
    FROM (
      SELECT
        user_id,
        timestamp,
        value AS amount
      FROM events
      WHERE
        name = 'purchase'
    ) AS lk_f0
    WHERE
      timestamp >= CAST('2026-02-15 00:00:00' AS TIMESTAMP)
      AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
  ) AS lk_f
    ON lk_f.user_id = u.lk_unit
  GROUP BY
    u.lk_unit
), lk_agg1 AS (
  SELECT
    u.lk_unit AS lk_key,
    SUM(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 END) AS lk_c0,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
      END
    ) AS lk_c1,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first + INTERVAL 86400 SECOND
        AND lk_f.timestamp < u.lk_first + INTERVAL 604800 SECOND
        THEN 1
        ELSE 0
      END
    ) AS lk_c2,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 ELSE 0 END) AS lk_c3,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
        ELSE 0
      END
    ) AS lk_c4
  FROM lk_units AS u
  JOIN (
    SELECT DISTINCT
      user_id,
      anonymous_id
    FROM (
      SELECT
        user_id,
        anonymous_id
      FROM identities
    ) AS lk_j0
  ) AS lk_j
    ON lk_j.user_id = u.lk_unit
  JOIN (
    SELECT
      *
    FROM (
      SELECT
        anonymous_id,
        timestamp
      FROM events
      WHERE
        name = 'page_view'
    ) AS lk_f0
    WHERE
      timestamp >= CAST('2026-02-15 00:00:00' AS TIMESTAMP)
      AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
  ) AS lk_f
    ON lk_f.anonymous_id = lk_j.anonymous_id
  WHERE
    u.lk_variation >= 0
  GROUP BY
    u.lk_unit
), lk_raw AS (
  SELECT
    a0.lk_bvar AS lk_arm,
    a0.lk_bday AS lk_day,
    a0.lk_bdim0 AS lk_d0,
    CAST(COALESCE(a0.lk_c0, 0) AS DOUBLE) AS lk_v0_0,
    CAST(COALESCE(a0.lk_c1, 0) AS DOUBLE) AS lk_v0_1,
    CAST(COALESCE(a0.lk_c2, 0) AS DOUBLE) AS lk_v1_0,
    CAST(COALESCE(a0.lk_c3, 0) AS DOUBLE) AS lk_v1_1,
    CAST(COALESCE(a0.lk_c2, 0) AS DOUBLE) AS lk_v2_0,
    CAST(COALESCE(a1.lk_c0, 0) AS DOUBLE) AS lk_v2_1,
    CAST(COALESCE(a0.lk_c3, 0) AS DOUBLE) AS lk_v2_2,
    CAST(COALESCE(a1.lk_c1, 0) AS DOUBLE) AS lk_v2_3,
    LEAST(CAST(COALESCE(a0.lk_c4, 0) AS DOUBLE), 500.0) AS lk_v3_0,
    CAST(COALESCE(a0.lk_c5, 0) AS DOUBLE) AS lk_v4_0,
    CAST(COALESCE(a0.lk_c6, 0) AS DOUBLE) AS lk_v4_1,
    CAST(COALESCE(a0.lk_c7, 0) AS DOUBLE) AS lk_v5_0,
    CAST(COALESCE(a0.lk_c8, 0) AS DOUBLE) AS lk_v6_0,
    CAST(a0.lk_c2 AS DOUBLE) AS lk_v8_0,
    CASE
      WHEN a0.lk_bfirst + INTERVAL 604800 SECOND <= CAST('2026-03-11 00:00:00' AS TIMESTAMP)
      THEN CAST(COALESCE(a1.lk_c2, 0) AS DOUBLE)
    END AS lk_v9_0,
    CAST(COALESCE(a1.lk_c3, 0) AS DOUBLE) AS lk_v10_0,
    CAST(COALESCE(a1.lk_c4, 0) AS DOUBLE) AS lk_v10_1,
    CAST(COALESCE(a1.lk_c0, 0) AS DOUBLE) AS lk_v11_0,
    CAST(COALESCE(a1.lk_c1, 0) AS DOUBLE) AS lk_v11_1
  FROM lk_agg0 AS a0
  LEFT JOIN lk_agg1 AS a1
    ON a1.lk_key = a0.lk_key
  WHERE
    a0.lk_bvar < 0 OR COALESCE(a1.lk_c3, 0) = 1
), lk_caps AS (
  SELECT
    PERCENTILE(lk_v4_0, 0.99) AS lk_cap0,
    PERCENTILE(lk_v4_1, 0.99) AS lk_cap1
  FROM lk_raw
  WHERE
    lk_arm >= 0
), lk_values AS (
  SELECT
    r.lk_arm AS lk_arm,
    r.lk_day AS lk_day,
    r.lk_d0 AS lk_d0,
    r.lk_v0_0 AS lk_v0_0,
    r.lk_v0_1 AS lk_v0_1,
    r.lk_v1_0 AS lk_v1_0,
    r.lk_v1_1 AS lk_v1_1,
    r.lk_v2_0 AS lk_v2_0,
    r.lk_v2_1 AS lk_v2_1,
    r.lk_v2_2 AS lk_v2_2,
    r.lk_v2_3 AS lk_v2_3,
    r.lk_v3_0 AS lk_v3_0,
    LEAST(r.lk_v4_0, c.lk_cap0) AS lk_v4_0c,
    LEAST(r.lk_v4_1, c.lk_cap1) AS lk_v4_1c,
    r.lk_v5_0 AS lk_v5_0,
    r.lk_v6_0 AS lk_v6_0,
    r.lk_v8_0 AS lk_v8_0,
    r.lk_v9_0 AS lk_v9_0,
    r.lk_v10_0 AS lk_v10_0,
    r.lk_v10_1 AS lk_v10_1,
    r.lk_v11_0 AS lk_v11_0,
    r.lk_v11_1 AS lk_v11_1
  FROM lk_raw AS r
  CROSS JOIN lk_caps AS c
)
SELECT
  lk_arm,
  lk_day,
  lk_d0,
  COUNT(*) AS lk_units,
  COUNT(lk_v0_0) AS m0_n,
  SUM(lk_v0_0) AS m0_s0,
  SUM(lk_v0_1) AS m0_s1,
  SUM(lk_v0_0 * lk_v0_0) AS m0_p00,
  SUM(lk_v0_0 * lk_v0_1) AS m0_p01,
  SUM(lk_v0_1 * lk_v0_1) AS m0_p11,
  COUNT(lk_v1_0) AS m1_n,
  SUM(lk_v1_0) AS m1_s0,
  SUM(lk_v1_1) AS m1_s1,
  SUM(lk_v1_0 * lk_v1_0) AS m1_p00,
  SUM(lk_v1_0 * lk_v1_1) AS m1_p01,
  SUM(lk_v1_1 * lk_v1_1) AS m1_p11,
  COUNT(lk_v2_0) AS m2_n,
  SUM(lk_v2_0) AS m2_s0,
  SUM(lk_v2_1) AS m2_s1,
  SUM(lk_v2_2) AS m2_s2,
  SUM(lk_v2_3) AS m2_s3,
  SUM(lk_v2_0 * lk_v2_0) AS m2_p00,
  SUM(lk_v2_0 * lk_v2_1) AS m2_p01,
  SUM(lk_v2_0 * lk_v2_2) AS m2_p02,
  SUM(lk_v2_0 * lk_v2_3) AS m2_p03,
  SUM(lk_v2_1 * lk_v2_1) AS m2_p11,
  SUM(lk_v2_1 * lk_v2_2) AS m2_p12,
  SUM(lk_v2_1 * lk_v2_3) AS m2_p13,
  SUM(lk_v2_2 * lk_v2_2) AS m2_p22,
  SUM(lk_v2_2 * lk_v2_3) AS m2_p23,
  SUM(lk_v2_3 * lk_v2_3) AS m2_p33,
  COUNT(lk_v3_0) AS m3_n,
  SUM(lk_v3_0) AS m3_s0,
  SUM(lk_v3_0 * lk_v3_0) AS m3_p00,
  COUNT(lk_v4_0c) AS m4_n,
  SUM(lk_v4_0c) AS m4_s0,
  SUM(lk_v4_1c) AS m4_s1,
  SUM(lk_v4_0c * lk_v4_0c) AS m4_p00,
  SUM(lk_v4_0c * lk_v4_1c) AS m4_p01,
  SUM(lk_v4_1c * lk_v4_1c) AS m4_p11,
  COUNT(lk_v5_0) AS m5_n,
  SUM(lk_v5_0) AS m5_s0,
  SUM(lk_v5_0 * lk_v5_0) AS m5_p00,
  COUNT(lk_v6_0) AS m6_n,
  SUM(lk_v6_0) AS m6_s0,
  SUM(lk_v6_0 * lk_v6_0) AS m6_p00,
  COUNT(lk_v8_0) AS m8_n,
  SUM(lk_v8_0) AS m8_s0,
  SUM(lk_v8_0 * lk_v8_0) AS m8_p00,
  COUNT(lk_v9_0) AS m9_n,
  SUM(lk_v9_0) AS m9_s0,
  SUM(lk_v9_0 * lk_v9_0) AS m9_p00,
  COUNT(lk_v10_0) AS m10_n,
  SUM(lk_v10_0) AS m10_s0,
  SUM(lk_v10_1) AS m10_s1,
  SUM(lk_v10_0 * lk_v10_0) AS m10_p00,
  SUM(lk_v10_0 * lk_v10_1) AS m10_p01,
  SUM(lk_v10_1 * lk_v10_1) AS m10_p11,
  COUNT(lk_v11_0) AS m11_n,
  SUM(lk_v11_0) AS m11_s0,
  SUM(lk_v11_1) AS m11_s1,
  SUM(lk_v11_0 * lk_v11_0) AS m11_p00,
  SUM(lk_v11_0 * lk_v11_1) AS m11_p01,
  SUM(lk_v11_1 * lk_v11_1) AS m11_p11
FROM lk_values
GROUP BY
  lk_arm,
  lk_day,
  lk_d0;

-- quantile p90_order
WITH lk_exposures AS (
  SELECT
    hash_value AS lk_eunit,
    timestamp AS lk_eat,
    variation_id AS lk_earm,
    GET_JSON_OBJECT(attributes, '$.country') AS lk_edim0
  FROM exposures
  WHERE
    experiment_key = 'planted'
    AND timestamp >= CAST('2026-03-01 00:00:00' AS TIMESTAMP)
    AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
    AND hash_value IN (
      SELECT
        user_id
      FROM (
        SELECT
          user_id
        FROM identities
        WHERE
          user_id <> 'u0'
      ) AS lk_seg
    )
), lk_units AS (
  SELECT
    lk_eunit AS lk_unit,
    MIN(lk_eat) AS lk_first,
    CAST(MIN(lk_eat) AS DATE) AS lk_date,
    CASE WHEN MIN(lk_earm) = MAX(lk_earm) THEN MIN(lk_earm) ELSE -1 END AS lk_variation,
    MIN(lk_edim0) AS lk_dim0
  FROM lk_exposures
  GROUP BY
    lk_eunit
), lk_agg0 AS (
  SELECT
    u.lk_unit AS lk_key,
    MIN(u.lk_variation) AS lk_bvar,
    MIN(u.lk_date) AS lk_bday,
    MIN(u.lk_first) AS lk_bfirst,
    MIN(u.lk_dim0) AS lk_bdim0,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 ELSE 0 END) AS lk_c0,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
        ELSE 0
      END
    ) AS lk_c1,
    SUM(CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c2,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN lk_f.amount
      END
    ) AS lk_c3,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c4,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first + INTERVAL 3600 SECOND
        AND lk_f.timestamp < u.lk_first + INTERVAL 262800 SECOND
        THEN lk_f.amount
      END
    ) AS lk_c5,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN lk_f.amount
      END
    ) AS lk_c6,
    COUNT(
      CASE
        WHEN lk_f.timestamp >= u.lk_first
        AND lk_f.timestamp >= CAST('2026-03-09 00:00:00' AS TIMESTAMP)
        THEN 1
      END
    ) AS lk_c7,
    COUNT(DISTINCT CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c8
  FROM lk_units AS u
  LEFT JOIN (
    SELECT
      *
    FROM (
      SELECT
        user_id,
        timestamp,
        value AS amount
      FROM events
      WHERE
        name = 'purchase'
    ) AS lk_f0
    WHERE
      timestamp >= CAST('2026-02-15 00:00:00' AS TIMESTAMP)
      AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
  ) AS lk_f
    ON lk_f.user_id = u.lk_unit
  GROUP BY
    u.lk_unit
), lk_agg1 AS (
  SELECT
    u.lk_unit AS lk_key,
    SUM(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 END) AS lk_c0,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
      END
    ) AS lk_c1,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first + INTERVAL 86400 SECOND
        AND lk_f.timestamp < u.lk_first + INTERVAL 604800 SECOND
        THEN 1
        ELSE 0
      END
    ) AS lk_c2,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 ELSE 0 END) AS lk_c3,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
        ELSE 0
      END
    ) AS lk_c4
  FROM lk_units AS u
  JOIN (
    SELECT DISTINCT
      user_id,
      anonymous_id
    FROM (
      SELECT
        user_id,
        anonymous_id
      FROM identities
    ) AS lk_j0
  ) AS lk_j
    ON lk_j.user_id = u.lk_unit
  JOIN (
    SELECT
      *
    FROM (
      SELECT
        anonymous_id,
        timestamp
      FROM events
      WHERE
        name = 'page_view'
    ) AS lk_f0
    WHERE
      timestamp >= CAST('2026-02-15 00:00:00' AS TIMESTAMP)
      AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
  ) AS lk_f
    ON lk_f.anonymous_id = lk_j.anonymous_id
  WHERE
    u.lk_variation >= 0
  GROUP BY
    u.lk_unit
), lk_raw AS (
  SELECT
    a0.lk_bvar AS lk_arm,
    a0.lk_bday AS lk_day,
    a0.lk_bdim0 AS lk_d0,
    CAST(COALESCE(a0.lk_c0, 0) AS DOUBLE) AS lk_v0_0,
    CAST(COALESCE(a0.lk_c1, 0) AS DOUBLE) AS lk_v0_1,
    CAST(COALESCE(a0.lk_c2, 0) AS DOUBLE) AS lk_v1_0,
    CAST(COALESCE(a0.lk_c3, 0) AS DOUBLE) AS lk_v1_1,
    CAST(COALESCE(a0.lk_c2, 0) AS DOUBLE) AS lk_v2_0,
    CAST(COALESCE(a1.lk_c0, 0) AS DOUBLE) AS lk_v2_1,
    CAST(COALESCE(a0.lk_c3, 0) AS DOUBLE) AS lk_v2_2,
    CAST(COALESCE(a1.lk_c1, 0) AS DOUBLE) AS lk_v2_3,
    LEAST(CAST(COALESCE(a0.lk_c4, 0) AS DOUBLE), 500.0) AS lk_v3_0,
    CAST(COALESCE(a0.lk_c5, 0) AS DOUBLE) AS lk_v4_0,
    CAST(COALESCE(a0.lk_c6, 0) AS DOUBLE) AS lk_v4_1,
    CAST(COALESCE(a0.lk_c7, 0) AS DOUBLE) AS lk_v5_0,
    CAST(COALESCE(a0.lk_c8, 0) AS DOUBLE) AS lk_v6_0,
    CAST(a0.lk_c2 AS DOUBLE) AS lk_v8_0,
    CASE
      WHEN a0.lk_bfirst + INTERVAL 604800 SECOND <= CAST('2026-03-11 00:00:00' AS TIMESTAMP)
      THEN CAST(COALESCE(a1.lk_c2, 0) AS DOUBLE)
    END AS lk_v9_0,
    CAST(COALESCE(a1.lk_c3, 0) AS DOUBLE) AS lk_v10_0,
    CAST(COALESCE(a1.lk_c4, 0) AS DOUBLE) AS lk_v10_1,
    CAST(COALESCE(a1.lk_c0, 0) AS DOUBLE) AS lk_v11_0,
    CAST(COALESCE(a1.lk_c1, 0) AS DOUBLE) AS lk_v11_1
  FROM lk_agg0 AS a0
  LEFT JOIN lk_agg1 AS a1
    ON a1.lk_key = a0.lk_key
  WHERE
    a0.lk_bvar < 0 OR COALESCE(a1.lk_c3, 0) = 1
), lk_caps AS (
  SELECT
    PERCENTILE(lk_v4_0, 0.99) AS lk_cap0,
    PERCENTILE(lk_v4_1, 0.99) AS lk_cap1
  FROM lk_raw
  WHERE
    lk_arm >= 0
), lk_values AS (
  SELECT
    r.lk_arm AS lk_arm,
    r.lk_day AS lk_day,
    r.lk_d0 AS lk_d0,
    r.lk_v0_0 AS lk_v0_0,
    r.lk_v0_1 AS lk_v0_1,
    r.lk_v1_0 AS lk_v1_0,
    r.lk_v1_1 AS lk_v1_1,
    r.lk_v2_0 AS lk_v2_0,
    r.lk_v2_1 AS lk_v2_1,
    r.lk_v2_2 AS lk_v2_2,
    r.lk_v2_3 AS lk_v2_3,
    r.lk_v3_0 AS lk_v3_0,
    LEAST(r.lk_v4_0, c.lk_cap0) AS lk_v4_0c,
    LEAST(r.lk_v4_1, c.lk_cap1) AS lk_v4_1c,
    r.lk_v5_0 AS lk_v5_0,
    r.lk_v6_0 AS lk_v6_0,
    r.lk_v8_0 AS lk_v8_0,
    r.lk_v9_0 AS lk_v9_0,
    r.lk_v10_0 AS lk_v10_0,
    r.lk_v10_1 AS lk_v10_1,
    r.lk_v11_0 AS lk_v11_0,
    r.lk_v11_1 AS lk_v11_1
  FROM lk_raw AS r
  CROSS JOIN lk_caps AS c
), lk_q AS (
  SELECT
    u.lk_unit AS lk_qunit,
    u.lk_variation AS lk_qarm,
    CAST(lk_f.amount AS DOUBLE) AS lk_qv
  FROM lk_units AS u
  JOIN (
    SELECT
      user_id,
      timestamp,
      value AS amount
    FROM events
    WHERE
      name = 'purchase'
  ) AS lk_f
    ON lk_f.user_id = u.lk_unit
  WHERE
    u.lk_variation >= 0
    AND lk_f.timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
    AND lk_f.timestamp >= u.lk_first
    AND NOT lk_f.amount IS NULL
), lk_ranked AS (
  SELECT
    lk_qarm,
    lk_qv,
    lk_qunit,
    ROW_NUMBER() OVER (PARTITION BY lk_qarm ORDER BY lk_qv NULLS LAST) AS lk_rn,
    COUNT(*) OVER (PARTITION BY lk_qarm) AS lk_qn
  FROM lk_q
), lk_qstats AS (
  SELECT
    lk_qarm AS lk_sarm,
    MAX(lk_qn) AS lk_n,
    MAX(CASE WHEN lk_rn = GREATEST(LEAST(CEIL(lk_qn * 0.9), lk_qn), 1) THEN lk_qv END) AS lk_quantile,
    MAX(
      CASE
        WHEN lk_rn = GREATEST(
          LEAST(FLOOR(lk_qn * 0.9 - 1.959963984540054 * SQRT(lk_qn * 0.08999999999999998)), lk_qn),
          1
        )
        THEN lk_qv
      END
    ) AS lk_lower,
    MAX(
      CASE
        WHEN lk_rn = GREATEST(
          LEAST(CEIL(lk_qn * 0.9 + 1.959963984540054 * SQRT(lk_qn * 0.08999999999999998)), lk_qn),
          1
        )
        THEN lk_qv
      END
    ) AS lk_upper
  FROM lk_ranked
  GROUP BY
    lk_qarm
), lk_clusters AS (
  SELECT
    q.lk_qarm AS lk_carm,
    q.lk_qunit AS lk_cunit,
    SUM(CASE WHEN q.lk_qv <= s.lk_quantile THEN 1 ELSE 0 END) AS lk_b,
    COUNT(*) AS lk_c
  FROM lk_q AS q
  JOIN lk_qstats AS s
    ON s.lk_sarm = q.lk_qarm
  GROUP BY
    q.lk_qarm,
    q.lk_qunit
), lk_csums AS (
  SELECT
    lk_carm,
    COUNT(*) AS lk_k,
    SUM(CAST(lk_b AS DOUBLE)) AS lk_sb,
    SUM(CAST(lk_c AS DOUBLE)) AS lk_sc,
    SUM(CAST(lk_b * lk_b AS DOUBLE)) AS lk_sbb,
    SUM(CAST(lk_c * lk_c AS DOUBLE)) AS lk_scc,
    SUM(CAST(lk_b * lk_c AS DOUBLE)) AS lk_sbc
  FROM lk_clusters
  GROUP BY
    lk_carm
)
SELECT
  s.lk_sarm,
  s.lk_n,
  s.lk_quantile,
  s.lk_lower,
  s.lk_upper,
  k.lk_k,
  k.lk_sb,
  k.lk_sc,
  k.lk_sbb,
  k.lk_scc,
  k.lk_sbc
FROM lk_qstats AS s
JOIN lk_csums AS k
  ON k.lk_carm = s.lk_sarm;

-- quantile p50_spend
WITH lk_exposures AS (
  SELECT
    hash_value AS lk_eunit,
    timestamp AS lk_eat,
    variation_id AS lk_earm,
    GET_JSON_OBJECT(attributes, '$.country') AS lk_edim0
  FROM exposures
  WHERE
    experiment_key = 'planted'
    AND timestamp >= CAST('2026-03-01 00:00:00' AS TIMESTAMP)
    AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
    AND hash_value IN (
      SELECT
        user_id
      FROM (
        SELECT
          user_id
        FROM identities
        WHERE
          user_id <> 'u0'
      ) AS lk_seg
    )
), lk_units AS (
  SELECT
    lk_eunit AS lk_unit,
    MIN(lk_eat) AS lk_first,
    CAST(MIN(lk_eat) AS DATE) AS lk_date,
    CASE WHEN MIN(lk_earm) = MAX(lk_earm) THEN MIN(lk_earm) ELSE -1 END AS lk_variation,
    MIN(lk_edim0) AS lk_dim0
  FROM lk_exposures
  GROUP BY
    lk_eunit
), lk_agg0 AS (
  SELECT
    u.lk_unit AS lk_key,
    MIN(u.lk_variation) AS lk_bvar,
    MIN(u.lk_date) AS lk_bday,
    MIN(u.lk_first) AS lk_bfirst,
    MIN(u.lk_dim0) AS lk_bdim0,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 ELSE 0 END) AS lk_c0,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
        ELSE 0
      END
    ) AS lk_c1,
    SUM(CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c2,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN lk_f.amount
      END
    ) AS lk_c3,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c4,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first + INTERVAL 3600 SECOND
        AND lk_f.timestamp < u.lk_first + INTERVAL 262800 SECOND
        THEN lk_f.amount
      END
    ) AS lk_c5,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN lk_f.amount
      END
    ) AS lk_c6,
    COUNT(
      CASE
        WHEN lk_f.timestamp >= u.lk_first
        AND lk_f.timestamp >= CAST('2026-03-09 00:00:00' AS TIMESTAMP)
        THEN 1
      END
    ) AS lk_c7,
    COUNT(DISTINCT CASE WHEN lk_f.timestamp >= u.lk_first THEN lk_f.amount END) AS lk_c8
  FROM lk_units AS u
  LEFT JOIN (
    SELECT
      *
    FROM (
      SELECT
        user_id,
        timestamp,
        value AS amount
      FROM events
      WHERE
        name = 'purchase'
    ) AS lk_f0
    WHERE
      timestamp >= CAST('2026-02-15 00:00:00' AS TIMESTAMP)
      AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
  ) AS lk_f
    ON lk_f.user_id = u.lk_unit
  GROUP BY
    u.lk_unit
), lk_agg1 AS (
  SELECT
    u.lk_unit AS lk_key,
    SUM(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 END) AS lk_c0,
    SUM(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
      END
    ) AS lk_c1,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first + INTERVAL 86400 SECOND
        AND lk_f.timestamp < u.lk_first + INTERVAL 604800 SECOND
        THEN 1
        ELSE 0
      END
    ) AS lk_c2,
    MAX(CASE WHEN lk_f.timestamp >= u.lk_first THEN 1 ELSE 0 END) AS lk_c3,
    MAX(
      CASE
        WHEN lk_f.timestamp >= u.lk_first - INTERVAL 1209600 SECOND
        AND lk_f.timestamp < u.lk_first
        THEN 1
        ELSE 0
      END
    ) AS lk_c4
  FROM lk_units AS u
  JOIN (
    SELECT DISTINCT
      user_id,
      anonymous_id
    FROM (
      SELECT
        user_id,
        anonymous_id
      FROM identities
    ) AS lk_j0
  ) AS lk_j
    ON lk_j.user_id = u.lk_unit
  JOIN (
    SELECT
      *
    FROM (
      SELECT
        anonymous_id,
        timestamp
      FROM events
      WHERE
        name = 'page_view'
    ) AS lk_f0
    WHERE
      timestamp >= CAST('2026-02-15 00:00:00' AS TIMESTAMP)
      AND timestamp < CAST('2026-03-11 00:00:00' AS TIMESTAMP)
  ) AS lk_f
    ON lk_f.anonymous_id = lk_j.anonymous_id
  WHERE
    u.lk_variation >= 0
  GROUP BY
    u.lk_unit
), lk_raw AS (
  SELECT
    a0.lk_bvar AS lk_arm,
    a0.lk_bday AS lk_day,
    a0.lk_bdim0 AS lk_d0,
    CAST(COALESCE(a0.lk_c0, 0) AS DOUBLE) AS lk_v0_0,
    CAST(COALESCE(a0.lk_c1, 0) AS DOUBLE) AS lk_v0_1,
    CAST(COALESCE(a0.lk_c2, 0) AS DOUBLE) AS lk_v1_0,
    CAST(COALESCE(a0.lk_c3, 0) AS DOUBLE) AS lk_v1_1,
    CAST(COALESCE(a0.lk_c2, 0) AS DOUBLE) AS lk_v2_0,
    CAST(COALESCE(a1.lk_c0, 0) AS DOUBLE) AS lk_v2_1,
    CAST(COALESCE(a0.lk_c3, 0) AS DOUBLE) AS lk_v2_2,
    CAST(COALESCE(a1.lk_c1, 0) AS DOUBLE) AS lk_v2_3,
    LEAST(CAST(COALESCE(a0.lk_c4, 0) AS DOUBLE), 500.0) AS lk_v3_0,
    CAST(COALESCE(a0.lk_c5, 0) AS DOUBLE) AS lk_v4_0,
    CAST(COALESCE(a0.lk_c6, 0) AS DOUBLE) AS lk_v4_1,
    CAST(COALESCE(a0.lk_c7, 0) AS DOUBLE) AS lk_v5_0,
    CAST(COALESCE(a0.lk_c8, 0) AS DOUBLE) AS lk_v6_0,
    CAST(a0.lk_c2 AS DOUBLE) AS lk_v8_0,
    CASE
      WHEN a0.lk_bfirst + INTERVAL 604800 SECOND <= CAST('2026-03-11 00:00:00' AS TIMESTAMP)
      THEN CAST(COALESCE(a1.lk_c2, 0) AS DOUBLE)
    END AS lk_v9_0,
    CAST(COALESCE(a1.lk_c3, 0) AS DOUBLE) AS lk_v10_0,
    CAST(COALESCE(a1.lk_c4, 0) AS DOUBLE) AS lk_v10_1,
    CAST(COALESCE(a1.lk_c0, 0) AS DOUBLE) AS lk_v11_0,
    CAST(COALESCE(a1.lk_c1, 0) AS DOUBLE) AS lk_v11_1
  FROM lk_agg0 AS a0
  LEFT JOIN lk_agg1 AS a1
    ON a1.lk_key = a0.lk_key
  WHERE
    a0.lk_bvar < 0 OR COALESCE(a1.lk_c3, 0) = 1
), lk_caps AS (
  SELECT
    PERCENTILE(lk_v4_0, 0.99) AS lk_cap0,
    PERCENTILE(lk_v4_1, 0.99) AS lk_cap1
  FROM lk_raw
  WHERE
    lk_arm >= 0
), lk_values AS (
  SELECT
    r.lk_arm AS lk_arm,
    r.lk_day AS lk_day,
    r.lk_d0 AS lk_d0,
    r.lk_v0_0 AS lk_v0_0,
    r.lk_v0_1 AS lk_v0_1,
    r.lk_v1_0 AS lk_v1_0,
    r.lk_v1_1 AS lk_v1_1,
    r.lk_v2_0 AS lk_v2_0,
    r.lk_v2_1 AS lk_v2_1,
    r.lk_v2_2 AS lk_v2_2,
    r.lk_v2_3 AS lk_v2_3,
    r.lk_v3_0 AS lk_v3_0,
    LEAST(r.lk_v4_0, c.lk_cap0) AS lk_v4_0c,
    LEAST(r.lk_v4_1, c.lk_cap1) AS lk_v4_1c,
    r.lk_v5_0 AS lk_v5_0,
    r.lk_v6_0 AS lk_v6_0,
    r.lk_v8_0 AS lk_v8_0,
    r.lk_v9_0 AS lk_v9_0,
    r.lk_v10_0 AS lk_v10_0,
    r.lk_v10_1 AS lk_v10_1,
    r.lk_v11_0 AS lk_v11_0,
    r.lk_v11_1 AS lk_v11_1
  FROM lk_raw AS r
  CROSS JOIN lk_caps AS c
), lk_q AS (
  SELECT
    lk_arm AS lk_qarm,
    lk_v8_0 AS lk_qv
  FROM lk_values
  WHERE
    lk_arm >= 0 AND NOT lk_v8_0 IS NULL
), lk_ranked AS (
  SELECT
    lk_qarm,
    lk_qv,
    ROW_NUMBER() OVER (PARTITION BY lk_qarm ORDER BY lk_qv NULLS LAST) AS lk_rn,
    COUNT(*) OVER (PARTITION BY lk_qarm) AS lk_qn
  FROM lk_q
), lk_qstats AS (
  SELECT
    lk_qarm AS lk_sarm,
    MAX(lk_qn) AS lk_n,
    MAX(CASE WHEN lk_rn = GREATEST(LEAST(CEIL(lk_qn * 0.5), lk_qn), 1) THEN lk_qv END) AS lk_quantile,
    MAX(
      CASE
        WHEN lk_rn = GREATEST(LEAST(FLOOR(lk_qn * 0.5 - 1.959963984540054 * SQRT(lk_qn * 0.25)), lk_qn), 1)
        THEN lk_qv
      END
    ) AS lk_lower,
    MAX(
      CASE
        WHEN lk_rn = GREATEST(LEAST(CEIL(lk_qn * 0.5 + 1.959963984540054 * SQRT(lk_qn * 0.25)), lk_qn), 1)
        THEN lk_qv
      END
    ) AS lk_upper
  FROM lk_ranked
  GROUP BY
    lk_qarm
)
SELECT
  *
FROM lk_qstats;
