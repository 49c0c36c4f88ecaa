import { transferScenario } from './scenario.js';

transferScenario(9);
