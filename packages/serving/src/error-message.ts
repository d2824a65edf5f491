/** An error's message for a log line or a wrapping error (a thrown non-Error as its text). */
export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));
