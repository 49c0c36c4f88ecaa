import { deleteScenario } from './scenarios.js';

deleteScenario(2);
