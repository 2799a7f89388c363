/* Tests of the progress bar (log.h): exact plain-mode lines for a scripted clock (every N items,
 * every T seconds, unknown totals, s/it below one item per second), exact TTY redraws with "\r",
 * the bar, padding over a longer previous line, the redraw throttle, line truncation to the
 * terminal width, clearing, and the duration format. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grove/log.h"

/* A clock the test sets by hand. */
static double fake_now;
static double fake_clock(void *user) {
    (void)user;
    return fake_now;
}

typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} capture;

static void capture_open(capture *c) {
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    cr_assert_not_null(c->f);
}

static const char *capture_text(capture *c) {
    fflush(c->f);
    return c->buf;
}

static void capture_close(capture *c) {
    fclose(c->f);
    free(c->buf);
}

static gv_progress_options options(capture *c, gv_progress_mode mode) {
    gv_progress_options o = {0};
    o.out = c->f;
    o.mode = mode;
    o.clock = fake_clock;
    return o;
}

Test(progress, duration_format) {
    char b[32];
    cr_assert_str_eq(gv_format_duration(3725, b, sizeof b), "1:02:05");
    cr_assert_str_eq(gv_format_duration(35, b, sizeof b), "0:35");
    cr_assert_str_eq(gv_format_duration(725, b, sizeof b), "12:05");
    cr_assert_str_eq(gv_format_duration(59.6, b, sizeof b), "1:00");
    cr_assert_str_eq(gv_format_duration(36000, b, sizeof b), "10:00:00");
    cr_assert_str_eq(gv_format_duration(0, b, sizeof b), "0:00");
    cr_assert_str_eq(gv_format_duration(-5, b, sizeof b), "0:00");
}

Test(progress, plain_lines_every_n_items) {
    capture c;
    capture_open(&c);
    gv_progress_options o = options(&c, GV_PROGRESS_PLAIN);
    o.every_items = 25;
    gv_progress p;
    fake_now = 0;
    gv_progress_begin(&p, NULL, 100, &o);
    for (int i = 1; i <= 100; ++i) {
        fake_now = 0.5 * i;
        gv_progress_update(&p, i, "reward %.2f", 0.01 * i);
    }
    fake_now = 50;
    gv_progress_finish(&p);
    cr_assert_str_eq(capture_text(&c), "25/100 it 2.0 it/s ETA 0:38 reward 0.25\n"
                                       "50/100 it 2.0 it/s ETA 0:25 reward 0.50\n"
                                       "75/100 it 2.0 it/s ETA 0:13 reward 0.75\n"
                                       "100/100 it 2.0 it/s ETA 0:00 reward 1.00\n"
                                       "100/100 it 2.0 it/s done in 0:50 reward 1.00\n");
    capture_close(&c);
}

Test(progress, plain_lines_every_t_seconds_unknown_total_slow_rate) {
    capture c;
    capture_open(&c);
    gv_progress_options o = options(&c, GV_PROGRESS_PLAIN);
    o.every_seconds = 10;
    o.unit = "iter";
    gv_progress p;
    fake_now = 100; /* the clock's origin is arbitrary */
    gv_progress_begin(&p, "eval", 0, &o);
    const double t[] = {103, 109, 110, 115, 120.5};
    for (int i = 0; i < 5; ++i) {
        fake_now = t[i];
        gv_progress_update(&p, i + 1, NULL);
    }
    fake_now = 121;
    gv_progress_finish(&p);
    cr_assert_str_eq(capture_text(&c), "eval 3 iter 3.3 s/iter\n"
                                       "eval 5 iter 4.1 s/iter\n"
                                       "eval 5 iter 4.2 s/iter done in 0:21\n");
    capture_close(&c);
}

Test(progress, plain_default_is_every_30_seconds_and_auto_detects_non_tty) {
    capture c;
    capture_open(&c);
    gv_progress_options o = options(&c, GV_PROGRESS_AUTO); /* a memstream is not a TTY */
    gv_progress p;
    fake_now = 0;
    gv_progress_begin(&p, "train", 1000, &o);
    for (int i = 1; i <= 70; ++i) {
        fake_now = i;
        gv_progress_update(&p, i, NULL);
    }
    cr_assert_str_eq(capture_text(&c), "train 30/1000 it 1.0 it/s ETA 16:10\n"
                                       "train 60/1000 it 1.0 it/s ETA 15:40\n");
    capture_close(&c);
}

/* "\r" + line + blanks over the rest of the previous line. */
static void append_draw(char *out, size_t len, const char *line, size_t *prev_len) {
    size_t n = strlen(line), at = strlen(out);
    size_t pad = *prev_len > n ? *prev_len - n : 0;
    snprintf(out + at, len - at, "\r%s%*s", line, (int)pad, "");
    *prev_len = n;
}

Test(progress, tty_redraws_one_line) {
    capture c;
    capture_open(&c);
    gv_progress_options o = options(&c, GV_PROGRESS_TTY);
    o.bar_width = 10;
    gv_progress p;
    fake_now = 0;
    gv_progress_begin(&p, NULL, 100, &o);
    fake_now = 0.05;
    gv_progress_update(&p, 1, "reward %.2f", 0.1);
    fake_now = 0.1;
    gv_progress_update(&p, 2, NULL); /* 0.05 s after the last redraw: throttled */
    fake_now = 18.5;
    gv_progress_update(&p, 37, "reward %.2f kl %.3f", 0.41, 0.002);
    fake_now = 20;
    gv_progress_update(&p, 40, "%s", ""); /* shorter line: blanks cover the old one */
    fake_now = 20.01;
    gv_progress_update(&p, 100, NULL); /* the last item always redraws */
    fake_now = 50;
    gv_progress_finish(&p);

    char want[1024] = "";
    size_t prev = 0;
    append_draw(want, sizeof want, "[..........] 1/100 it  20.0 it/s  ETA 0:05  reward 0.10", &prev);
    append_draw(want, sizeof want,
                "[###.......] 37/100 it  2.0 it/s  ETA 0:32  reward 0.41 kl 0.002", &prev);
    append_draw(want, sizeof want, "[####......] 40/100 it  2.0 it/s  ETA 0:30", &prev);
    append_draw(want, sizeof want, "[##########] 100/100 it  5.0 it/s  ETA 0:00", &prev);
    append_draw(want, sizeof want, "[##########] 100/100 it  2.0 it/s  done in 0:50", &prev);
    strcat(want, "\n");
    cr_assert_str_eq(capture_text(&c), want);
    cr_assert(strstr(want, "ETA 0:30          "), "the padding case is really exercised");
    capture_close(&c);
}

Test(progress, tty_redraw_is_throttled_to_10_per_second) {
    capture c;
    capture_open(&c);
    gv_progress_options o = options(&c, GV_PROGRESS_TTY);
    gv_progress p;
    fake_now = 0;
    gv_progress_begin(&p, NULL, 100000, &o);
    for (int i = 1; i <= 2000; ++i) {
        fake_now = 0.001 * i; /* 2000 updates in 2 s */
        gv_progress_update(&p, i, NULL);
    }
    int draws = 0;
    for (const char *s = capture_text(&c); *s; ++s) draws += *s == '\r';
    cr_assert(draws >= 19 && draws <= 21, "%d redraws for 2 s of updates", draws);
    capture_close(&c);
}

Test(progress, tty_line_is_cut_to_the_terminal_width_and_can_be_cleared) {
    capture c;
    capture_open(&c);
    gv_progress_options o = options(&c, GV_PROGRESS_TTY);
    o.columns = 30;
    o.bar_width = 10;
    gv_progress p;
    fake_now = 0;
    gv_progress_begin(&p, NULL, 100, &o);
    fake_now = 1;
    gv_progress_update(&p, 50, "reward 0.99 kl 0.001 clip 0.2");
    gv_progress_clear(&p);
    gv_progress_clear(&p); /* nothing on screen: no output */
    fake_now = 1.01;
    gv_progress_update(&p, 51, NULL); /* redrawn at once after a clear */
    char want[256];
    snprintf(want, sizeof want, "\r%s\r%29s\r\r%s", "[#####.....] 50/100 it  50.0 ", "",
             "[#####.....] 51/100 it  50.5 ");
    cr_assert_str_eq(capture_text(&c), want);
    capture_close(&c);
}
