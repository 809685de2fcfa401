/**
 * The most one heartbeat carries of one running attempt's log, in bytes (a chatty task's live log
 * lags behind; its uploaded log holds every line).
 */
export const maxLogAppendBytes = 64 * 1024;
