import { benchMinorFault, MINOR_FAULT_DEFAULTS } from './minor_fault.js';
await benchMinorFault({ threads: 1, ...MINOR_FAULT_DEFAULTS });
await benchMinorFault({ threads: 2, ...MINOR_FAULT_DEFAULTS });
